"""ccm serve: nights, sync requests, connection health, servers, OAuth states, the scheduler's job store;
tenants' night time and contact address; what triggered a sync run; tokens shared by one consent.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("night_time", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("contact_email", sa.String(length=320), nullable=True))
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(sa.Column("trigger", sa.String(length=16), nullable=True))
    with op.batch_alter_table("oauth_tokens") as batch:
        batch.add_column(sa.Column("grant_id", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_oauth_tokens_grant_id"), "oauth_tokens", ["grant_id"])
    op.create_table(
        "nights",
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=True),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "night", name=op.f("pk_nights")),
    )
    op.create_index(op.f("ix_nights_state_not_before"), "nights", ["state", "not_before"])
    op.create_table(
        "sync_requests",
        sa.Column("request_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_sync_requests")),
    )
    op.create_index(
        op.f("ix_sync_requests_tenant_id_request_id"), "sync_requests", ["tenant_id", "request_id"]
    )
    op.create_table(
        "health_issues",
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("notice_key", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "kind", name=op.f("pk_health_issues")),
    )
    op.create_table(
        "servers",
        sa.Column("server_id", sa.String(length=128), nullable=False),
        sa.Column("url", sa.String(length=255), nullable=False),
        sa.Column("clock", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("server_id", name=op.f("pk_servers")),
    )
    op.create_table(
        "oauth_states",
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("ledger", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_oauth_states")),
    )
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    op.create_index(op.f("ix_apscheduler_jobs_next_run_time"), "apscheduler_jobs", ["next_run_time"])


def downgrade() -> None:
    op.drop_index(op.f("ix_apscheduler_jobs_next_run_time"), table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")
    op.drop_table("oauth_states")
    op.drop_table("servers")
    op.drop_table("health_issues")
    op.drop_index(op.f("ix_sync_requests_tenant_id_request_id"), table_name="sync_requests")
    op.drop_table("sync_requests")
    op.drop_index(op.f("ix_nights_state_not_before"), table_name="nights")
    op.drop_table("nights")
    op.drop_index(op.f("ix_oauth_tokens_grant_id"), table_name="oauth_tokens")
    with op.batch_alter_table("oauth_tokens") as batch:
        batch.drop_column("grant_id")
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("trigger")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("contact_email")
        batch.drop_column("night_time")

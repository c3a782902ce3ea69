"""Outbox and reminder history.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("replay_safe", sa.Boolean(), nullable=False),
        sa.Column("planned_at", sa.DateTime(), nullable=False),
        sa.Column("send_after", sa.DateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_outbox")),
    )
    op.create_index(
        op.f("ix_outbox_tenant_id_state_send_after"), "outbox", ["tenant_id", "state", "send_after"]
    )
    op.create_table(
        "reminder_history",
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("invoice_id", sa.String(length=255), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("sent_on", sa.Date(), nullable=False),
        sa.Column("action_key", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "invoice_id", "level", name=op.f("pk_reminder_history")),
    )
    op.create_index(
        op.f("ix_reminder_history_tenant_id_customer_id"), "reminder_history", ["tenant_id", "customer_id"]
    )


def downgrade() -> None:
    op.drop_table("reminder_history")
    op.drop_table("outbox")

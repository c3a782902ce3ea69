"""Drop `apscheduler_jobs`: every `ccm serve` now keeps its scheduler's jobs in memory, on SQLite as on
PostgreSQL (connector/serve/scheduler.py); a night missed while the server was down is marked due at start
(`Scheduler.catch_up`, within `serve.misfire_grace_hours`), and the nights table decides what has run. The
jobs the table held are rebuilt from the tenants at every start, so dropping it loses nothing.

Kept: `nights` and `sync_requests` (what is owed and why; the executors only make sure something runs it),
the outbox and run leases (they protect side effects), and `servers`: the `ccm serve` processes alive, with
their URL and clock, which `ccm sync --now` (is a server there to take the request?) and `ccm schedule`
(the server's simulated clock, who serves) read on SQLite and PostgreSQL alike; procrastinate's workers
table knows only workers, not a `ccm serve --no-worker`, its URL or its clock.

The downgrade recreates the table empty (as 0007 made it): an older ccm's SQLite `ccm serve` fills it again.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index(op.f("ix_apscheduler_jobs_next_run_time"), table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")


def downgrade() -> None:
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    op.create_index(op.f("ix_apscheduler_jobs_next_run_time"), "apscheduler_jobs", ["next_run_time"])

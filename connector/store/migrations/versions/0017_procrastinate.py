"""Background work on procrastinate when the store is PostgreSQL: its tables, types and functions, in the
schema ccm's tables live in (connector/jobs/schema.py). Nothing changes on SQLite, where `ccm serve` keeps
its in-process dispatcher.

Kept on both: `nights` (the exactly-once record of each firm's night), `sync_requests` (which streams and
why), the outbox and run leases (they protect side effects), `servers` (which `ccm serve` processes are up,
with their clock: `ccm schedule`, `ccm sync --now`) and `apscheduler_jobs` (the SQLite scheduler's store;
unused on PostgreSQL, where each `ccm serve` keeps its jobs in memory).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from alembic import op

from connector.jobs import schema

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.apply(op.get_bind())


def downgrade() -> None:
    schema.drop(op.get_bind())

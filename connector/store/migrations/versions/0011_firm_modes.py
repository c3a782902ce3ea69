"""Safe first nights: a firm's chosen mode, when it was connected, and the nights run since.

Firms connected before this revision keep connected_at empty: they have had their first nights already, so
neither safe nights nor the backlog cutoff apply to them.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("mode", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("connected_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("nights_run", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_night", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("last_night")
        batch.drop_column("nights_run")
        batch.drop_column("connected_at")
        batch.drop_column("mode")

"""Night reports: what each tenant's night did, in the bookkeeper's words (`ccm nights`).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "night_reports",
        sa.Column("report_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("ran_from", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_night_reports")),
    )
    op.create_index(
        op.f("ix_night_reports_tenant_id_night"), "night_reports", ["tenant_id", "night"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_night_reports_tenant_id_night"), table_name="night_reports")
    op.drop_table("night_reports")

"""Reference rates: the Bank of England Bank Rate and the ECB main refinancing rate as last fetched.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_rates",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("rate", sa.BigInteger(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "effective_date", name=op.f("pk_reference_rates")),
    )


def downgrade() -> None:
    op.drop_table("reference_rates")

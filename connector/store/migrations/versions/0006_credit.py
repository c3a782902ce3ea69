"""Credit control: limits, applied holds, manual-hold and business flags on customer settings.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_settings") as batch:
        batch.add_column(sa.Column("manual_hold", sa.Boolean(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("manual_hold_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("business", sa.Boolean(), nullable=False, server_default="1"))
    op.create_table(
        "credit_limits",
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_credit_limits")),
    )
    op.create_table(
        "credit_holds",
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("on_hold", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("action_key", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_credit_holds")),
    )


def downgrade() -> None:
    op.drop_table("credit_holds")
    op.drop_table("credit_limits")
    with op.batch_alter_table("customer_settings") as batch:
        batch.drop_column("business")
        batch.drop_column("manual_hold_reason")
        batch.drop_column("manual_hold")

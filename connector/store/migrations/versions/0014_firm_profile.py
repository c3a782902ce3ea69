"""The firm's profile: sender identity, legal footer, locale and bank details (connector/firmprofile.py).

One row per tenant; a tenant without one keeps the server's smtp sender and shows no bank details, as before.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "firm_profiles",
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("from_name", sa.String(length=255), nullable=True),
        sa.Column("from_address", sa.String(length=320), nullable=True),
        sa.Column("reply_to", sa.String(length=320), nullable=True),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("company_number", sa.String(length=255), nullable=True),
        sa.Column("registered_office", sa.Text(), nullable=True),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("pay_account_name", sa.String(length=255), nullable=True),
        sa.Column("pay_sort_code", sa.String(length=8), nullable=True),
        sa.Column("pay_account_number", sa.String(length=8), nullable=True),
        sa.Column("pay_iban", sa.String(length=64), nullable=True),
        sa.Column("pay_bic", sa.String(length=11), nullable=True),
        sa.Column("pay_reference", sa.Text(), nullable=True),
        sa.Column("statements", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_firm_profiles_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_firm_profiles")),
    )


def downgrade() -> None:
    op.drop_table("firm_profiles")

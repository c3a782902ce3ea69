"""The bookkeeper's pages: users with roles, the firms granted to them, and the audit log.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_users",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("all_tenants", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_web_users")),
    )
    op.create_table(
        "web_grants",
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_name"],
            ["web_users.name"],
            name=op.f("fk_web_grants_user_name_web_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_name", "tenant_id", name=op.f("pk_web_grants")),
    )
    op.create_table(
        "web_audit",
        sa.Column("audit_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("who", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.Column("what", sa.String(length=255), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("audit_id", name=op.f("pk_web_audit")),
    )
    op.create_index(op.f("ix_web_audit_tenant_id_at"), "web_audit", ["tenant_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_web_audit_tenant_id_at"), table_name="web_audit")
    op.drop_table("web_audit")
    op.drop_table("web_grants")
    op.drop_table("web_users")

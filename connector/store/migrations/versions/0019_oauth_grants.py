"""One row per consent: tokens move from `oauth_tokens` (a copy per tenant) to `oauth_grants` (one per grant).

Tenants connected by one consent (a bookkeeper's Xero login reaching many organisations) shared one rotating
token set, but each held a copy, so every refresh rewrote every copy: a consent of N organisations cost N row
writes a refresh, and connecting them N(N+1)/2. Now the grant's tokens are one row; `oauth_tokens` keeps
which grant each tenant uses. A tenant connected alone (no grant id) becomes its own grant, keyed by its
tenant id, so its refresh claim (`refresh:<tenant>` in run_leases) is the one it had.

Carried over: of the copies of one grant, the latest written (`updated_at`, then tenant id); every tenant
keeps its link. The ciphertext moves as it is (still encrypted with the same vault key).

The downgrade puts a copy of its grant's tokens back on every tenant row; a tenant that was its own grant
gets its grant id back as NULL.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_TOKEN_COLUMNS = ("ciphertext", "expires_at", "refresh_expires_at", "updated_at")
_grants = sa.table(
    "oauth_grants", *(sa.column(c) for c in ("grant_id", *_TOKEN_COLUMNS))
)  # untyped: values move as the database holds them


def upgrade() -> None:
    op.create_table(
        "oauth_grants",
        sa.Column("grant_id", sa.String(length=255), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("refresh_expires_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_oauth_grants")),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT tenant_id, grant_id, ciphertext, expires_at, refresh_expires_at, updated_at FROM oauth_tokens"
        " ORDER BY updated_at, tenant_id"
    )).mappings().all()  # fmt: skip
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:  # in write order: the last copy of a grant wins
        grant = row["grant_id"] or row["tenant_id"]
        latest[grant] = {"grant_id": grant, **{c: row[c] for c in _TOKEN_COLUMNS}}
    if latest:
        op.bulk_insert(_grants, list(latest.values()))
    conn.execute(sa.text("UPDATE oauth_tokens SET grant_id = tenant_id WHERE grant_id IS NULL"))
    op.drop_index(op.f("ix_oauth_tokens_grant_id"), table_name="oauth_tokens")
    with op.batch_alter_table("oauth_tokens") as batch:
        for column in _TOKEN_COLUMNS:
            batch.drop_column(column)
        batch.alter_column(
            "grant_id", existing_type=sa.String(length=64), type_=sa.String(length=255), nullable=False
        )
        batch.create_foreign_key(
            op.f("fk_oauth_tokens_grant_id_oauth_grants"), "oauth_grants", ["grant_id"], ["grant_id"]
        )
    op.create_index(op.f("ix_oauth_tokens_grant_id"), "oauth_tokens", ["grant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_oauth_tokens_grant_id"), table_name="oauth_tokens")
    with op.batch_alter_table("oauth_tokens") as batch:
        batch.drop_constraint(op.f("fk_oauth_tokens_grant_id_oauth_grants"), type_="foreignkey")
        batch.add_column(sa.Column("ciphertext", sa.Text(), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("refresh_expires_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch.alter_column("grant_id", existing_type=sa.String(length=255), nullable=True)
    conn = op.get_bind()
    for column in _TOKEN_COLUMNS:
        conn.execute(sa.text(
            f"UPDATE oauth_tokens SET {column} = (SELECT g.{column} FROM oauth_grants g"  # noqa: S608 - names
            " WHERE g.grant_id = oauth_tokens.grant_id)"
        ))  # fmt: skip
    conn.execute(sa.text("UPDATE oauth_tokens SET grant_id = NULL WHERE grant_id = tenant_id"))
    with op.batch_alter_table("oauth_tokens") as batch:
        for column in ("ciphertext", "expires_at", "updated_at"):
            batch.alter_column(column, existing_type=sa.Text() if column == "ciphertext" else sa.DateTime(),
                               nullable=False)  # fmt: skip
        batch.alter_column("grant_id", existing_type=sa.String(length=255), type_=sa.String(length=64))
    op.create_index(op.f("ix_oauth_tokens_grant_id"), "oauth_tokens", ["grant_id"])
    op.drop_table("oauth_grants")

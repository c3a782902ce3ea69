"""Call outcomes, snoozed approvals and the morning digest's opt-in.

- `call_outcomes`: what came of each call task (promise, dispute, no answer, paid), with the chasing event it
  opened (connector/calls.py).
- `outbox_snoozes`: actions awaiting approval put aside until a time (connector/snooze.py).
- `morning_digests`: the firms that receive the morning digest e-mail (connector/digest.py).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_outcomes",
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_call_outcomes")),
    )
    op.create_index(
        op.f("ix_call_outcomes_tenant_id_customer_id"), "call_outcomes", ["tenant_id", "customer_id"]
    )
    op.create_table(
        "outbox_snoozes",
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_outbox_snoozes")),
    )
    op.create_table(
        "morning_digests",
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_morning_digests_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_morning_digests")),
    )


def downgrade() -> None:
    op.drop_table("morning_digests")
    op.drop_table("outbox_snoozes")
    op.drop_index(op.f("ix_call_outcomes_tenant_id_customer_id"), table_name="call_outcomes")
    op.drop_table("call_outcomes")

"""The ledger's own balance per customer (Xero Balances.AccountsReceivable.Outstanding, QuickBooks
Customer.Balance), kept to check ccm's open balance against it before acting on the customer.

Empty until the customer is next read from the ledger (and for ledgers that do not report one).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("ledger_balance", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("ledger_balance")

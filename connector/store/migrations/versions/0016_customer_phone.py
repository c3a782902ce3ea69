"""The customer's phone number (Xero Phones: DEFAULT, else DDI, else MOBILE; QuickBooks PrimaryPhone, else
Mobile), dialable as written, for call tasks, `ccm customer` and the customer page.

Empty until the customer is next read from the ledger.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("phone")

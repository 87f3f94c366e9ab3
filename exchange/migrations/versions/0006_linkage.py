"""Linkage and cross-checks: records' subject keys, and grants naming two products.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("record") as table:
        table.add_column(
            sa.Column("subject_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        table.create_index("ix_record_product_id_subject_key", ["product_id", "subject_key"])
    for name in ("access_request", "access_grant"):
        with op.batch_alter_table(name) as table:
            table.add_column(
                sa.Column("partner", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
            )


def downgrade() -> None:
    for name in ("access_grant", "access_request"):
        with op.batch_alter_table(name) as table:
            table.drop_column("partner")
    with op.batch_alter_table("record") as table:
        table.drop_index("ix_record_product_id_subject_key")
        table.drop_column("subject_key")

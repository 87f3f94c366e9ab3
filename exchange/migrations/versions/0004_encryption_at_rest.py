"""Encryption at rest: the current master key, wrapped data keys, sealed record
fields with blind indexes, and records' images.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_key",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("master_key_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("rewrapped_at", sa.DateTime(), nullable=True),
        sa.Column("destroyed_at", sa.DateTime(), nullable=True),
        sa.Column("destroyed_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_data_key_product_id_product")
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_data_key")),
    )
    key_head = op.create_table(
        "key_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("current_master_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_head")),
    )
    op.bulk_insert(key_head, [{"id": 1, "current_master_id": None}])
    op.create_table(
        "record_image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.Column("uploaded_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_record_image_product_id_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_image")),
        sa.UniqueConstraint(
            "product_id", "record_id", name=op.f("uq_record_image_product_id_record_id")
        ),
    )
    with op.batch_alter_table("record") as batch:
        batch.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("blind", sa.JSON(), nullable=True))


def downgrade() -> None:
    sealed = op.get_bind().execute(sa.text("SELECT count(*) FROM record")).scalar()
    if sealed:
        raise RuntimeError(
            f"{sealed} records hold their protected fields sealed; downgrading would drop "
            "them. Export what you need first."
        )
    with op.batch_alter_table("record") as batch:
        batch.drop_column("blind")
        batch.drop_column("sealed")
    op.drop_table("record_image")
    op.drop_table("key_head")
    op.drop_table("data_key")

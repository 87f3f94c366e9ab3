"""Feeds: subscriptions, the outbox of their events, and delivery attempts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:00:59.152153
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("organization", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("principal", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("product", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("delivery", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("secret", sa.LargeBinary(), nullable=True),
        sa.Column("previous_secret", sa.LargeBinary(), nullable=True),
        sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("batch_seq", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_subscription_product_id_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription")),
        sa.UniqueConstraint("uid", name=op.f("uq_subscription_uid")),
    )
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscription_organization"), ["organization"], unique=False
        )

    op.create_table(
        "delivery_attempt",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("first_event", sa.BigInteger(), nullable=False),
        sa.Column("last_event", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscription.id"],
            name=op.f("fk_delivery_attempt_subscription_id_subscription"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempt")),
    )
    with op.batch_alter_table("delivery_attempt", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_attempt_subscription_id_id", ["subscription_id", "id"], unique=False
        )

    op.create_table(
        "feed_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("record_seq", sa.BigInteger(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("batch", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id", "record_seq"],
            ["record.product_id", "record.seq"],
            name=op.f("fk_feed_event_product_id_record"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscription.id"],
            name=op.f("fk_feed_event_subscription_id_subscription"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_event")),
        sa.UniqueConstraint(
            "subscription_id", "seq", name=op.f("uq_feed_event_subscription_id_seq")
        ),
    )
    with op.batch_alter_table("feed_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_feed_event_product_id_record_seq", ["product_id", "record_seq"], unique=False
        )
        batch_op.create_index(
            "ix_feed_event_subscription_id_state_seq",
            ["subscription_id", "state", "seq"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("feed_event", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_event_subscription_id_state_seq")
        batch_op.drop_index("ix_feed_event_product_id_record_seq")

    op.drop_table("feed_event")
    with op.batch_alter_table("delivery_attempt", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_attempt_subscription_id_id")

    op.drop_table("delivery_attempt")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_organization"))

    op.drop_table("subscription")

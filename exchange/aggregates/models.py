"""The privacy budget ledger: how much epsilon each consumer has spent on a product."""

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class PrivacyBudget(SQLModel, table=True):
    """Epsilon spent by one organisation on one product in one calendar month (UTC).
    A query debits it in the same transaction as its audit entry, so the budget
    survives restarts and every worker sees the same figure."""

    __tablename__ = "privacy_budget"
    __table_args__ = (UniqueConstraint("organization", "product", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    organization: str = Field(max_length=64)
    product: str = Field(max_length=64)
    period: str = Field(max_length=7, description="YYYY-MM")
    spent: float = 0.0

"""The policy as data: numbered versions, the lines each version added and removed,
a one-row head that serialises changes, and the stewards' policy tests."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from exchange.timeutil import utcnow

HEAD_ID = 1


class PolicyHead(SQLModel, table=True):
    """The version in force. A change locks this row, so changes are serial; workers
    poll it (or hear NOTIFY on PostgreSQL) to learn of a new version."""

    __tablename__ = "policy_head"
    id: int = Field(default=HEAD_ID, primary_key=True)
    version: int = 0


class PolicyVersion(SQLModel, table=True):
    """One change: who, why, when, and how big. Never updated or deleted."""

    __tablename__ = "policy_version"
    number: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    digest: str = Field(max_length=32)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    author: str = Field(max_length=64)
    reason: str = Field(max_length=2000)
    restored_from: int | None = None
    tests_overridden: str | None = Field(default=None, max_length=2000)
    added: int = 0
    removed: int = 0
    line_count: int = 0


class PolicyRule(SQLModel, table=True):
    """A line of the policy, alive from the version that added it until the one that
    removed it: the policy at version v is every line with added_in <= v < removed_in."""

    __tablename__ = "policy_rule"
    id: int | None = Field(default=None, primary_key=True)
    line: str = Field(max_length=1000)
    added_in: int = Field(index=True)
    removed_in: int | None = Field(default=None, index=True)


class PolicyTest(SQLModel, table=True):
    """An expected decision a steward stored; every change must keep it true."""

    __tablename__ = "policy_test"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    case: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    author: str = Field(max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )

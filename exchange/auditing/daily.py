"""Accesses to product data per UTC day, by organisation and decision: the numbers
behind the auditor's charts. Read-only; the caller decides (`read` on
`system:audit`) and audits the read, as the audit API's routes do.

An access is an entry whose action reads a product's data (`ACCESSES`), allowed
or denied. One GROUP BY over the audit table, on the day in UTC whatever the
database's time zone: SQLite stores the UTC time as text, PostgreSQL as
`timestamptz`, and `UtcDay` compiles to each one's way of naming the date.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import String, func, select
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement
from sqlmodel import col

from audit import store as log
from audit.store import AuditEntry

ACCESSES = ("read", "pull", "deliver", "aggregate", "reidentify")
MAX_DAYS = 366


class UtcDay(FunctionElement[str]):
    """`YYYY-MM-DD` of a stored time, in UTC."""

    type = String()
    inherit_cache = True


@compiles(UtcDay, "sqlite")
def _sqlite_day(element: UtcDay, compiler: Any, **kw: Any) -> str:
    # The exchange stores UTC times without their zone: the text's date is the UTC date.
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(UtcDay, "postgresql")
def _postgres_day(element: UtcDay, compiler: Any, **kw: Any) -> str:
    moment = compiler.process(element.clauses, **kw)
    return f"to_char(({moment}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@compiles(UtcDay)
def _other_day(element: UtcDay, compiler: Any, **kw: Any) -> str:
    raise CompileError(f"no UTC day for the {compiler.dialect.name} dialect")


@dataclass(frozen=True)
class DayCount:
    """How many accesses one organisation made on one day with one decision."""

    day: date
    organization: str | None
    decision: str
    accesses: int


@dataclass(frozen=True)
class DailyAccesses:
    """The counts for every day of a window, oldest day first (days with none included)."""

    days: tuple[date, ...]
    counts: tuple[DayCount, ...]

    def by(self, key: Literal["organization", "decision"]) -> dict[str | None, list[int]]:
        """Per organisation (or decision), its count on each day of `days`; names
        sorted, `None` (an entry with no organisation) last."""
        position = {day: i for i, day in enumerate(self.days)}
        names = sorted({getattr(c, key) for c in self.counts}, key=lambda n: (n is None, n or ""))
        totals: dict[str | None, list[int]] = {name: [0] * len(self.days) for name in names}
        for count in self.counts:
            totals[getattr(count, key)][position[count.day]] += count.accesses
        return totals

    def per_day(self) -> list[int]:
        totals = [0] * len(self.days)
        position = {day: i for i, day in enumerate(self.days)}
        for count in self.counts:
            totals[position[count.day]] += count.accesses
        return totals

    @property
    def total(self) -> int:
        return sum(count.accesses for count in self.counts)


def window(days: int, now: datetime) -> tuple[date, ...]:
    """The last `days` UTC days up to and including `now`'s. ValueError outside 1..MAX_DAYS."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"a window is 1 to {MAX_DAYS} days, not {days}")
    today = now.astimezone(UTC).date()
    return tuple(today - timedelta(days=back) for back in range(days - 1, -1, -1))


def accesses_per_day(session: Session, days: int, now: datetime) -> DailyAccesses:
    """Accesses in the last `days` UTC days (up to `now`), grouped by day, organisation
    and decision. ValueError for a window outside 1..MAX_DAYS."""
    shown = window(days, now)
    since = datetime.combine(shown[0], time(), tzinfo=UTC)
    until = datetime.combine(shown[-1] + timedelta(days=1), time(), tzinfo=UTC)
    # Times never decrease along the log, so the window is an index range.
    first, end = log.index_range(session, since, until)
    day, organization, decision = (
        UtcDay(col(AuditEntry.recorded_at)),
        col(AuditEntry.organization),
        col(AuditEntry.decision),
    )
    query = (
        select(day, organization, decision, func.count())
        .where(
            col(AuditEntry.index) >= first,
            col(AuditEntry.index) < end,
            col(AuditEntry.action).in_(ACCESSES),
        )
        .group_by(day, organization, decision)
        .order_by(day, organization, decision)
    )
    counts = tuple(
        DayCount(date.fromisoformat(text), who, answer, accesses)
        for text, who, answer, accesses in session.execute(query)
    )
    return DailyAccesses(shown, counts)

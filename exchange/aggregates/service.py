"""Counts grouped by place, time and category, released with a privacy budget.

The query counts in Python over the window's records (a place is an H3 cell,
which SQL cannot compute), bounds each subject's contribution, adds Laplace
noise and drops small groups (`exchange/privacy/noise.py`). Before any of that,
it debits the consumer's budget for the product and month in the request's
transaction: a query that would overspend is refused, and a refused or failed
query spends nothing.
"""

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from exchange.aggregates.models import PrivacyBudget
from exchange.catalog.access import ProductAccess
from exchange.catalog.models import Definition, FieldType, Sensitivity
from exchange.errors import BadRequest, BudgetExhausted, FieldError
from exchange.grants.models import Grant
from exchange.grants.service import scope_clauses, visible
from exchange.privacy.noise import bounded, release
from exchange.privacy.sealing import DataKey
from exchange.privacy.views import bucket_start, generalize_point
from exchange.records.models import Record
from exchange.records.sealed import opened
from exchange.timeutil import parse_rfc3339, to_rfc3339, utcnow

TIME_BUCKETS = ("hour", "day")  # of the views' buckets, the ones counts group by
MAX_GROUPINGS = 3
COUNT = "count"


@dataclass(frozen=True)
class Budget:
    period: str
    limit: float
    spent: float

    @property
    def remaining(self) -> float:
        return round(max(self.limit - self.spent, 0.0), 6)


def _point_field(definition: Definition) -> str | None:
    return next((f.name for f in definition.fields if f.type == FieldType.geo_point), None)


def _grouping_problem(definition: Definition, grant: Grant | None, name: str) -> str | None:
    """Why the results cannot be grouped by `name` — including a field the caller's
    grant withholds, which grouping would reveal."""
    if name == "cell":
        point = _point_field(definition)
        if point is None:
            return "the product has no geo_point field to group by cell"
        return None if visible(grant, point) else f"your grant does not include {point}"
    if name in TIME_BUCKETS:
        if definition.time_field is None:
            return "the product has no time field"
        if not visible(grant, definition.time_field):
            return f"your grant does not include {definition.time_field}"
        return None
    if name == COUNT:
        return "count is the name of the result; a field called count cannot be a grouping"
    spec = next((f for f in definition.fields if f.name == name), None)
    if spec is None:
        return f"expected cell, hour, day or a field of the product, not {name!r}"
    if not visible(grant, name):
        return f"your grant does not include {name}"
    if spec.sensitivity != Sensitivity.none or spec.type not in (
        FieldType.string,
        FieldType.integer,
        FieldType.boolean,
    ):
        return f"{name} is not a plain category (a non-sensitive text, integer or boolean)"
    return None


def check_groupings(definition: Definition, grant: Grant | None, by: list[str]) -> None:
    if not 1 <= len(by) <= MAX_GROUPINGS or len(set(by)) != len(by):
        raise BadRequest(
            f"group by 1 to {MAX_GROUPINGS} different keys",
            errors=[FieldError("e.g. by=cell&by=day&by=violation_type", "by")],
        )
    errors = [
        FieldError(problem, "by", i)
        for i, name in enumerate(by)
        if (problem := _grouping_problem(definition, grant, name))
    ]
    if errors:
        raise BadRequest("a grouping cannot be used", errors=errors)


def debit(
    session: Session, organization: str, product: str, epsilon: float, limit: float
) -> Budget:
    """Spend `epsilon` of this month's budget, or raise BudgetExhausted (nothing spent)."""
    period = utcnow().strftime("%Y-%m")
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(PrivacyBudget)
        .values(organization=organization, product=product, period=period, spent=0.0)
        .on_conflict_do_nothing()
    )
    where = (
        PrivacyBudget.organization == organization,
        PrivacyBudget.product == product,
        PrivacyBudget.period == period,
    )
    done = session.execute(
        update(PrivacyBudget)
        .where(*where, PrivacyBudget.spent + epsilon <= limit + 1e-9)
        .values(spent=PrivacyBudget.spent + epsilon)
    )
    spent = session.scalar(select(PrivacyBudget.spent).where(*where)) or 0.0
    budget = Budget(period, limit, spent)
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise BudgetExhausted(
            f"this query needs epsilon {epsilon}; {budget.remaining} of {limit} is left "
            f"for {product} in {period}",
            remaining=budget.remaining,
            period=period,
        )
    return budget


def _group(definition: Definition, by: list[str], content: dict[str, Any]) -> Hashable | None:
    """The record's group, or None if it lacks a value to group by."""
    key: list[Any] = []
    for name in by:
        if name == "cell":
            point = content.get(_point_field(definition) or "")
            if not isinstance(point, dict):
                return None
            key.append(generalize_point(point, definition.grid_resolution)["cell"])
        elif name in TIME_BUCKETS:
            text = content.get(definition.time_field or "")
            if not isinstance(text, str):
                return None
            key.append(to_rfc3339(bucket_start(parse_rfc3339(text), name)))
        elif content.get(name) is None:
            return None
        else:
            key.append(content[name])
    return tuple(key)


@dataclass(frozen=True)
class Aggregated:
    groups: list[dict[str, Any]]
    records: int
    scale: float
    threshold: float
    budget: Budget


def aggregate(
    session: Session,
    access: ProductAccess,
    *,
    by: list[str],
    epsilon: float,
    since: datetime | None,
    until: datetime | None,
    k: int,
    cap: int,
    delta: float,
    budget_limit: float,
    key: DataKey | None,
) -> Aggregated:
    """Under a grant, only the records and fields within its scope count."""
    definition = access.described.definition
    check_groupings(definition, access.grant, by)
    budget = debit(
        session, access.caller.organization, access.described.product.slug, epsilon, budget_limit
    )
    query = select(Record).where(Record.product_id == access.described.product.id)
    if since is not None:
        query = query.where(Record.event_time >= since)
    if until is not None:
        query = query.where(Record.event_time < until)
    for clause in scope_clauses(access.grant):
        query = query.where(clause)
    subject_field = definition.subject_field
    rows = []
    for row in session.scalars(query.order_by(Record.seq).execution_options(yield_per=1000)):
        seq, content = row.seq, opened(key, row)
        group = _group(definition, by, content)
        if group is not None:
            subject = content.get(subject_field) if subject_field else None
            rows.append((("subject", subject) if subject is not None else ("record", seq), group))
    released = release(bounded(rows, cap), epsilon=epsilon, cap=cap, k=k, delta=delta)
    groups = [
        {**dict(zip(by, key, strict=True)), COUNT: count}  # type: ignore[call-overload]
        for key, count in sorted(released.counts.items(), key=lambda item: str(item[0]))
    ]
    return Aggregated(groups, len(rows), released.scale, released.threshold, budget)

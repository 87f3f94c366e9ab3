"""`GET /v1/products/{product}/aggregates`: counts that are safe to hand to anyone allowed.

Decided like a read (action `aggregate`, for a stated purpose), debited from the
caller's privacy budget, and audited; a refusal for an exhausted budget says how
much is left and is itself an audit entry.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from exchange.aggregates import service
from exchange.auditing.trail import record_allowed
from exchange.catalog.access import AggregateAccess, refusals_logged
from exchange.db import SessionDep
from exchange.timeutil import query_time, to_rfc3339

router = APIRouter(prefix="/v1/products/{product}", tags=["records"])


class BudgetPublic(BaseModel):
    period: str
    limit: float
    spent: float
    remaining: float


class Aggregates(BaseModel):
    product: str
    purpose: str
    by: list[str]
    label: str = Field(description="anonymised: only groups that passed the small-group test.")
    mechanism: str
    epsilon: float
    noise_scale: float
    delta: float
    min_group: int
    threshold: float = Field(description="The noisy count a group needed to be published.")
    contribution_cap: int
    groups: list[dict[str, Any]]
    budget: BudgetPublic


@router.get("/aggregates", response_model=Aggregates)
def aggregates(
    request: Request,
    session: SessionDep,
    access: AggregateAccess,
    by: Annotated[list[str], Query(description="cell, hour, day or a plain field; 1 to 3")],
    epsilon: Annotated[float, Query(gt=0, le=5, description="Budget this query spends")] = 1.0,
    since: Annotated[str | None, Query(alias="from", description="RFC 3339, inclusive")] = None,
    until: Annotated[str | None, Query(alias="to", description="RFC 3339, exclusive")] = None,
) -> Aggregates:
    """Noisy counts grouped by H3 cell, hour or day, and categories: each subject
    counts in at most a few records, Laplace noise is added for the epsilon spent,
    and groups whose noisy count is small are left out."""
    settings = request.app.state.settings
    start, end = query_time(since, "from"), query_time(until, "to")
    with refusals_logged(session, request, access):
        result = service.aggregate(
            session,
            access,
            by=by,
            epsilon=epsilon,
            since=start,
            until=end,
            k=settings.aggregate_min_group,
            cap=settings.aggregate_contribution_cap,
            delta=settings.aggregate_delta,
            budget_limit=settings.privacy_budget_epsilon,
            key=request.app.state.keyring.for_reading(session, access.described.product.id),
        )
    record_allowed(
        session,
        request,
        access,
        action="aggregate",
        product=access.described.product.slug,
        purpose=access.purpose,
        record_count=result.records,
        grant_id=access.grant_id,
        details={
            "by": by,
            "epsilon": epsilon,
            "groups": len(result.groups),
            "from": start and to_rfc3339(start),
            "to": end and to_rfc3339(end),
            "budget_period": result.budget.period,
            "budget_remaining": result.budget.remaining,
        },
    )
    return Aggregates(
        product=access.described.product.slug,
        purpose=access.purpose,
        by=by,
        label="anonymised",
        mechanism="laplace",
        epsilon=epsilon,
        noise_scale=result.scale,
        delta=settings.aggregate_delta,
        min_group=settings.aggregate_min_group,
        threshold=round(result.threshold, 3),
        contribution_cap=settings.aggregate_contribution_cap,
        groups=result.groups,
        budget=BudgetPublic(
            period=result.budget.period,
            limit=result.budget.limit,
            spent=result.budget.spent,
            remaining=result.budget.remaining,
        ),
    )

"""`POST /v1/decisions`: what would I get, and why — before asking for the data.

Any principal may ask about itself; stewards (`manage` on `system:policy`) may
ask on behalf of an organisation and roles. A product the caller may not
discover is not found here either, as in the catalog. Explaining reads no data,
so it is not an audit entry.
"""

from dataclasses import replace

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from exchange.auth import CallerDep, decide, engine
from exchange.catalog import service as catalog
from exchange.db import SessionDep
from exchange.errors import BadRequest, FieldError, NotFound
from exchange.grants import service as grants
from exchange.grants.models import Grant
from exchange.identity.models import Role
from exchange.identity.service import get_organization
from exchange.policy.references import SYSTEMS
from exchange.privacy import views
from policies import Decision, Resource, Subject

router = APIRouter(tags=["policies"])


class OnBehalf(BaseModel):
    organization: str
    roles: list[Role] = Field(min_length=1, max_length=5)


class DecisionQuery(BaseModel):
    product: str | None = Field(default=None, description="A product's slug…")
    system: str | None = Field(default=None, description="…or a part of the exchange, e.g. audit.")
    action: str = "read"
    purpose: str = ""
    subject: OnBehalf | None = Field(default=None, description="Stewards only: ask for them.")


class Explanation(BaseModel):
    allowed: bool
    reason: str
    hint: str | None
    rule: list[str] | None
    policy_version: str
    view: str
    fields: dict[str, str] = Field(description="Per field, the treatment it would get.")
    grant: int | None = Field(description="The grant that would allow it, if one does.")

    @classmethod
    def of(cls, decision: Decision, fields: dict[str, str], grant: Grant | None) -> "Explanation":
        return cls(
            allowed=decision.allowed,
            reason=decision.reason,
            hint=decision.hint,
            rule=list(decision.rule) if decision.rule else None,
            policy_version=decision.policy_version,
            view=decision.view,
            fields=fields,
            grant=grant.id if grant else None,
        )


@router.post("/v1/decisions", response_model=Explanation)
def explain(
    request: Request, session: SessionDep, caller: CallerDep, query: DecisionQuery
) -> Explanation:
    if (query.product is None) == (query.system is None):
        raise BadRequest(
            "name either a product or a system",
            errors=[FieldError("exactly one of product and system", "product")],
        )
    subject = caller.subject
    if query.subject is not None:
        decide(session, request, caller, Resource.system("policy"), "manage")
        org = get_organization(session, query.subject.organization)
        roles = frozenset(role.value for role in query.subject.roles)
        subject = Subject(f"org:{org.slug}", org.slug, org.kind, roles)
    policy = engine(request)
    if query.system is not None:
        if query.system not in SYSTEMS:
            raise NotFound(f"no part of the exchange is called {query.system!r}")
        decision = policy.decide(subject, Resource.system(query.system), query.action)
        return Explanation.of(decision, {}, None)
    described = catalog.describe(session, query.product or "")
    if not policy.decide(subject, described.resource, "discover").allowed:
        raise NotFound(f"no product {query.product!r}")
    held = grants.active(session, subject.organization, described.product.slug)
    resource = replace(described.resource, granted=frozenset(held))
    decision = policy.decide(subject, resource, query.action, query.purpose)
    fields = (
        views.treatments(decision.view, described.definition.fields, decision.treatments)
        if decision.allowed and decision.view != "-"
        else {}
    )
    grant = held.get(query.purpose) if decision.under_grant else None
    return Explanation.of(decision, grants.within_scope(fields, grant), grant)

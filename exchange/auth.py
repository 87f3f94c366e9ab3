"""Who is calling, and whether they may: the only place that asks `policies`.

`CallerDep` turns a bearer token into the calling principal (401 otherwise).
`decide` asks the policy engine and, when the answer is no, writes the denial to
the audit log, commits it on its own (`log_refusal`) and raises AccessDenied —
so denials are logged even though the request fails.
Routers never check roles themselves.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from exchange.auditing.trail import Actor, Origin, record
from exchange.db import SessionDep
from exchange.errors import AccessDenied, Unauthorized
from exchange.identity import service as identity
from policies import Decision, PolicyEngine, Resource, Subject


@dataclass(frozen=True)
class Caller:
    client_id: str
    name: str
    organization: str
    kind: str
    roles: frozenset[str]

    @property
    def actor(self) -> Actor:
        return Actor(self.client_id, self.organization)

    @property
    def subject(self) -> Subject:
        return Subject(self.client_id, self.organization, self.kind, self.roles)


def caller_of(session: Session, client_id: str) -> Caller | None:
    """The principal as it is now (roles, organisation); None if deleted or disabled."""
    found = identity.find_active(session, client_id)
    if found is None:
        return None
    principal, organization = found
    return Caller(
        client_id=principal.client_id,
        name=principal.name,
        organization=organization.slug,
        kind=organization.kind,
        roles=frozenset(principal.roles),
    )


def current_caller(request: Request, session: SessionDep) -> Caller:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send a bearer token from POST /oauth/token")
    claims = request.app.state.tokens.verify(token.strip())
    caller = caller_of(session, claims.subject)
    if caller is None:
        raise Unauthorized("the token's principal does not exist or is disabled")
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


def engine(request: Request) -> PolicyEngine:
    """The policy in force in this worker now."""
    engine: PolicyEngine = request.app.state.policy.current
    return engine


def log_refusal(
    session: Session,
    where: Request | Origin,
    caller: Caller,
    *,
    action: str,
    reason: str,
    decision: Decision | None = None,
    product: str | None = None,
    purpose: str | None = None,
) -> None:
    """Write a refusal to the audit log durably: whatever the request did so far is
    rolled back, the deny entry is committed on its own, and the caller then raises."""
    session.rollback()
    record(
        session,
        where,
        caller.actor,
        action=action,
        allowed=False,
        reason=reason,
        decision=decision,
        product=product,
        purpose=purpose,
    )
    session.commit()


def decide(
    session: Session,
    request: Request,
    caller: Caller,
    resource: Resource,
    action: str,
    purpose: str = "",
    *,
    logged_as: str | None = None,
    hint: str | None = None,
) -> Decision:
    """The decision, if allowed; a logged denial (AccessDenied) otherwise.

    A denial is logged under `logged_as` when given (the route's own action name),
    else the action ("read") or, for the exchange's parts, "audit.read". `hint`,
    when given, replaces the policy's hint for a denial no deny line made: the
    caller knows more (a grant that lapsed)."""
    return decide_with(
        engine(request),
        session,
        request,
        caller,
        resource,
        action,
        purpose,
        logged_as=logged_as,
        hint=hint,
    )


def decide_with(
    policy: PolicyEngine,
    session: Session,
    where: Request | Origin,
    caller: Caller,
    resource: Resource,
    action: str,
    purpose: str = "",
    *,
    logged_as: str | None = None,
    hint: str | None = None,
) -> Decision:
    """`decide` with the engine and origin given: for work outside a request (feed delivery)."""
    decision = policy.decide(caller.subject, resource, action, purpose)
    if not decision.allowed:
        product = resource.name if resource.is_product else None
        system = resource.name.removeprefix("system:")
        label = logged_as or (action if resource.is_product else f"{system}.{action}")
        log_refusal(
            session,
            where,
            caller,
            action=label,
            reason=decision.reason,
            decision=decision,
            product=product,
            purpose=purpose,
        )
        raise AccessDenied(
            decision.reason,
            hint=hint if hint and decision.rule is None else decision.hint,
            policy_version=decision.policy_version,
            rule=list(decision.rule) if decision.rule else None,
        )
    return decision


def system_access(name: str, action: str, caller_from: Callable[..., Caller] = current_caller):
    """A dependency that lets the caller through only if the policy allows
    `action` on `system:<name>`; the allowed decision is returned for the audit entry.
    `caller_from` is how the caller is known: a bearer token (the API) or the
    console's session cookie."""

    def dependency(
        request: Request, session: SessionDep, caller: Annotated[Caller, Depends(caller_from)]
    ) -> "SystemAccess":
        decision = decide(session, request, caller, Resource.system(name), action)
        return SystemAccess(caller, decision)

    return Depends(dependency)


@dataclass(frozen=True)
class SystemAccess:
    caller: Caller
    decision: Decision

"""Policy tests: decisions stewards expect, checked against every proposed policy.

A case names an organisation (with roles), a product, an action and a purpose —
`*` meaning every purpose the product declares — and what must hold:
`expect` allow or deny (or `any`), optionally the exact `view`, and
`never_raw`: fields that must never leave raw ("the map company never gets
raw plates"). Subjects and products are looked up as they are now, so a case
follows an organisation or product through its changes.
"""

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.catalog import service as catalog
from exchange.catalog.service import Described
from exchange.errors import FieldError, NotFound, ValidationFailed
from exchange.identity.models import Organization, Role
from exchange.policy.models import PolicyTest
from exchange.policy.references import ACTIONS, PURPOSEFUL_ACTIONS
from exchange.privacy import views
from policies import Decision, PolicyEngine, Subject

CASE_PRINCIPAL = "policy-test"


class PolicyCase(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="Says what must hold.")
    organization: str = Field(description="The asking organisation's slug.")
    roles: list[Role] = Field(default=[Role.subscriber], min_length=1, max_length=5)
    product: str
    action: str = Field(default="read", description=f"One of {', '.join(ACTIONS)}.")
    purpose: str = Field(default="*", description="A purpose, or * for every declared one.")
    with_grant: bool = Field(
        default=False, description="Decide as if the organisation held a grant for the purpose."
    )
    expect: Literal["allow", "deny", "any"]
    view: str | None = Field(default=None, description="When allowed, exactly this view.")
    never_raw: list[str] = Field(
        default=[], description="Fields that must never be shown raw (denied is fine)."
    )

    @model_validator(mode="after")
    def _meaningful(self) -> "PolicyCase":
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        if self.view is not None and self.expect != "allow":
            raise ValueError("view can only be expected with expect=allow")
        if self.expect == "any" and not self.never_raw:
            raise ValueError("expect=any checks nothing without never_raw")
        return self


class PolicyCasePublic(PolicyCase):
    id: int
    author: str


@dataclass(frozen=True)
class Failure:
    case: str
    request: str
    expected: str
    got: str


@dataclass(frozen=True)
class _Context:
    subject: Subject
    described: Described


class _Missing(NotFound):
    """The case names an organisation or product that does not exist (`field` says which)."""

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.field = field


def _context(session: Session, case: PolicyCase) -> _Context:
    kind = session.scalar(select(Organization.kind).where(Organization.slug == case.organization))
    if kind is None:
        raise _Missing(f"no organisation {case.organization!r}", "organization")
    subject = Subject(CASE_PRINCIPAL, case.organization, kind, frozenset(case.roles))
    try:
        return _Context(subject, catalog.describe(session, case.product))
    except NotFound as error:
        raise _Missing(error.detail, "product") from None


def check_references(session: Session, case: PolicyCase) -> None:
    """ValidationFailed naming the field, unless the organisation, product and fields exist."""
    try:
        context = _context(session, case)
    except _Missing as missing:
        error = FieldError(missing.detail, missing.field)
        raise ValidationFailed(missing.detail, errors=[error]) from None
    names = {spec.name for spec in context.described.definition.fields}
    errors = [
        FieldError(f"{context.described.product.slug} has no field {name!r}", "never_raw", i)
        for i, name in enumerate(case.never_raw)
        if name not in names
    ]
    if case.purpose != "*" and case.purpose not in context.described.definition.purposes:
        errors.append(FieldError("the product does not declare this purpose", "purpose"))
    if errors:
        raise ValidationFailed("the policy test refers to what does not exist", errors=errors)


def _outcome(
    decision: Decision, described: Described, never_raw: list[str]
) -> tuple[str, list[str]]:
    if not decision.allowed:
        return "deny", []
    shaped = views.treatments(decision.view, described.definition.fields, decision.treatments)
    raw = [name for name in never_raw if shaped.get(name) == "raw"]
    return f"allow ({decision.view})", raw


def _failures_of(engine: PolicyEngine, case: PolicyCase, context: _Context) -> list[Failure]:
    described = context.described
    if case.action not in PURPOSEFUL_ACTIONS:
        purposes = [""]
    elif case.purpose == "*":
        purposes = sorted(described.definition.purposes)
    else:
        purposes = [case.purpose]
    failures = []
    for purpose in purposes:
        resource = described.resource
        if case.with_grant and purpose:
            resource = replace(resource, granted=frozenset({purpose}))
        decision = engine.decide(context.subject, resource, case.action, purpose)
        got, raw = _outcome(decision, described, case.never_raw)
        expected = case.expect if case.view is None else f"allow ({case.view})"
        wrong = (case.expect != "any" and not got.startswith(case.expect)) or (
            case.view is not None and got != expected
        )
        if wrong or raw:
            request = (
                f"{case.organization} ({'+'.join(sorted(case.roles))}) {case.action} "
                f"{described.product.slug}" + (f" for {purpose}" if purpose else "")
            )
            shown = got + (f", with {', '.join(raw)} raw" if raw else "")
            if case.never_raw:
                expected += f", never raw: {', '.join(case.never_raw)}"
            failures.append(Failure(case.name, request, expected, f"{shown}: {decision.reason}"))
    return failures


def stored(session: Session) -> list[PolicyCasePublic]:
    return [
        PolicyCasePublic(**row.case, id=row.id, author=row.author)
        for row in session.scalars(select(PolicyTest).order_by(PolicyTest.id))
    ]


def failures(
    session: Session, engine: PolicyEngine, cases: list[PolicyCasePublic] | None = None
) -> list[Failure]:
    """Every way the stored cases (or the given ones) fail under `engine`.

    A case whose organisation or product no longer exists fails, saying so."""
    found = []
    for case in stored(session) if cases is None else cases:
        try:
            context = _context(session, case)
        except NotFound as error:
            found.append(Failure(case.name, "-", "its subject and product exist", error.detail))
            continue
        found += _failures_of(engine, case, context)
    return found

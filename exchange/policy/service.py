"""Changing the policy: validate, test, store as a new version, tell every worker.

A change is computed against the version in force *under the head lock*, so two
stewards editing at once cannot lose each other's work (and `expected_version`
lets a steward insist on the version they reviewed). Validation happens before
anything is written: the lines parse, Casbin's own loader accepts them, every
name they use exists, and no line repeats. Then the stored policy tests run
against the proposed policy; a change that breaks one is refused, listing the
failures, unless the steward overrides with a reason that goes into the version
and the audit entry.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.errors import Conflict, FieldError, ValidationFailed
from exchange.identity.models import Organization, Principal
from exchange.policy import cases, store
from exchange.policy.cases import Failure
from exchange.policy.live import notify_change
from exchange.policy.models import PolicyVersion
from exchange.policy.references import Known, reference_errors
from policies import PolicyEngine, PolicyError, PolicyLine, Resource, Subject, parse_lines
from policies.lines import difference
from policies.reference import check_loads


class TestsFail(Conflict):
    """A change that breaks stored policy tests, refused without an override."""

    code, title = "policy_tests_fail", "Policy tests fail"


@dataclass(frozen=True)
class Proposal:
    """A proposed policy relative to the one in force."""

    base: PolicyEngine
    lines: list[PolicyLine]
    added: list[PolicyLine]
    removed: list[PolicyLine]
    engine: PolicyEngine


def parsed(texts: Sequence[str]) -> list[PolicyLine]:
    """ValidationFailed naming the position of a bad or repeated line."""
    try:
        return parse_lines(texts)
    except PolicyError as error:
        index = error.line - 1 if error.line else None
        raise ValidationFailed(
            f"the policy is not valid; the one in force is unchanged: {error}",
            errors=[FieldError(str(error), "lines", index)],
        ) from None


def propose(session: Session, base: PolicyEngine, texts: Sequence[str]) -> Proposal:
    lines = parsed(texts)
    added, removed = difference(base.lines, lines)
    try:
        check_loads(added)
    except PolicyError as error:
        raise ValidationFailed(str(error), errors=[FieldError(str(error), "lines")]) from None
    positions = {line: index for index, line in enumerate(lines)}
    errors = reference_errors(Known.load(session, base.lines), added, positions)
    if errors:
        raise ValidationFailed(
            "the policy refers to what does not exist; the one in force is unchanged",
            errors=errors,
        )
    return Proposal(base, lines, added, removed, base.changed(added, removed))


def base_under_lock(session: Session, live: PolicyEngine, expected: int | None) -> PolicyEngine:
    """The version in force, locked for this transaction, as an engine."""
    head = store.lock_head(session)
    if expected is not None and expected != head:
        raise Conflict(
            f"the policy is at version {head}, not {expected}: review the changes since",
            current_version=head,
        )
    return store.caught_up(session, live)


def _someone_still_governs(session: Session, engine: PolicyEngine) -> bool:
    """Whether some active principal may still `manage` the policy under `engine`
    (a change that locks every steward out could only be undone in the database)."""
    rows = session.execute(
        select(Principal.client_id, Principal.roles, Organization.slug, Organization.kind)
        .join(Organization, Organization.id == Principal.organization_id)
        .where(Principal.active.is_(True))
    )
    policy = Resource.system("policy")
    return any(
        engine.decide(Subject(client, org, kind, frozenset(roles)), policy, "manage").allowed
        for client, roles, org, kind in rows
    )


@dataclass(frozen=True)
class Applied:
    version: PolicyVersion
    engine: PolicyEngine
    failures: list[Failure]


def apply(
    session: Session,
    proposal: Proposal,
    *,
    author: str,
    reason: str,
    override: str | None,
    restored_from: int | None = None,
) -> Applied:
    """Write the new version (the caller holds the head lock and audits it).

    Raises Conflict if nothing changes, TestsFail if tests break without `override`."""
    if not proposal.added and not proposal.removed:
        raise Conflict("the policy in force already has exactly these lines")
    if not _someone_still_governs(session, proposal.engine):
        raise Conflict(
            "after this change no active principal could change the policy again; "
            "keep a line that lets stewards manage system:policy"
        )
    failures = cases.failures(session, proposal.engine)
    if failures and override is None:
        raise TestsFail(
            f"{len(failures)} policy test(s) would fail; the policy in force is unchanged "
            "(override with a reason to apply anyway)",
            failures=[failure.__dict__ for failure in failures],
        )
    current = store.number_of(proposal.base.version) or 0
    change = store.Change(
        added=proposal.added,
        removed=proposal.removed,
        author=author,
        reason=reason,
        restored_from=restored_from,
        tests_overridden=override if failures else None,
    )
    version = store.write(session, current, change, proposal.lines)
    notify_change(session, version.number)
    engine = proposal.engine.labelled(store.label(version.number))
    return Applied(version, engine, failures)

"""What a proposed policy would change, before it is applied.

Two answers:

- **matrix**: every organisation (with each set of roles its principals hold) ×
  every product × every action × every purpose, decided under the policy in
  force and under the proposal; each difference in allowed, view or field
  treatment is a flip.
- **replay**: the requests the audit log actually recorded in a time window,
  decided again under the proposal and compared with what was decided then
  ("last week, 312 reads by lingnan-maps would have been denied"). The
  subject and product are taken as they are now, and the grants as they were
  at the time of each request.
"""

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.store import AuditEntry
from exchange.catalog import service as catalog
from exchange.catalog.service import Described
from exchange.errors import NotFound
from exchange.grants.models import Grant
from exchange.grants.service import active
from exchange.identity.models import Organization, Principal
from exchange.policy.references import PRODUCT_ACTIONS, PURPOSEFUL_ACTIONS, SYSTEMS
from exchange.timeutil import as_utc, to_rfc3339
from policies import Decision, PolicyEngine, Resource, Subject

SYSTEM_ACTIONS = ("read", "register", "manage", "link")
# Audit actions replayed, and the policy action each was decided as.
REPLAYED = {
    "read": "read",
    "publish": "publish",
    "update": "update",
    "access_request.create": "request_access",
    "aggregate": "aggregate",
    "reidentify": "reidentify",
}
FLIPS_SHOWN = 1000
SAMPLES = 5


class Outcome(BaseModel):
    allowed: bool
    view: str
    rule: list[str] | None
    fields: dict[str, str]

    @classmethod
    def of(cls, decision: Decision) -> "Outcome":
        return cls(
            allowed=decision.allowed,
            view=decision.view,
            rule=list(decision.rule) if decision.rule else None,
            fields=dict(decision.treatments),
        )


class MatrixFlip(BaseModel):
    organization: str
    kind: str
    roles: list[str]
    object: str
    action: str
    purpose: str
    before: Outcome
    after: Outcome


class MatrixResult(BaseModel):
    decisions: int
    flips: int
    newly_allowed: int
    newly_denied: int
    view_changed: int
    shown: list[MatrixFlip]


class ReplayGroup(BaseModel):
    summary: str
    organization: str | None
    actor: str | None
    product: str | None
    action: str
    purpose: str | None
    recorded: str
    proposed: str
    requests: int
    records: int
    first: str
    last: str
    sample_entries: list[int]


class ReplayResult(BaseModel):
    window: dict[str, str | None]
    replayed: int
    flipped: int
    unchanged: int
    skipped: dict[str, int]
    groups: list[ReplayGroup]


def _subjects(session: Session) -> list[Subject]:
    """Each organisation with each distinct set of roles its active principals hold."""
    rows = session.execute(
        select(Organization.slug, Organization.kind, Principal.roles)
        .join(Principal, Principal.organization_id == Organization.id)
        .where(Principal.active.is_(True))
    )
    seen = {(slug, kind, frozenset(roles)) for slug, kind, roles in rows}
    return [
        Subject(f"org:{slug}", slug, kind, roles)
        for slug, kind, roles in sorted(seen, key=lambda s: (s[0], sorted(s[2])))
    ]


def _products(session: Session) -> list[Described]:
    found: list[Described] = []
    after = None
    while True:
        page = catalog.search(
            session, q=None, tier=None, tag=None, publisher=None, after=after, limit=500
        )
        found += page
        if len(page) < 500:
            return found
        after = page[-1].product.id


def _changed(before: Decision, after: Decision) -> bool:
    return (before.allowed, before.view, dict(before.treatments)) != (
        after.allowed,
        after.view,
        dict(after.treatments),
    )


def matrix(session: Session, before: PolicyEngine, after: PolicyEngine) -> MatrixResult:
    subjects = _subjects(session)
    products = _products(session)
    purposes = sorted({p for d in products for p in d.definition.purposes})
    requests: list[tuple[Subject, Resource, str, str]] = []
    held_by: dict[tuple[str, str], frozenset[str]] = {}
    for subject in subjects:
        for described in products:
            key = (subject.organization, described.product.slug)
            if key not in held_by:
                held_by[key] = frozenset(active(session, *key))
            resource = replace(described.resource, granted=held_by[key])
            for action in PRODUCT_ACTIONS:
                for purpose in purposes if action in PURPOSEFUL_ACTIONS else [""]:
                    requests.append((subject, resource, action, purpose))
        for system in SYSTEMS:
            for action in SYSTEM_ACTIONS:
                requests.append((subject, Resource.system(system), action, ""))
    flips: list[MatrixFlip] = []
    counts: Counter[str] = Counter()
    for subject, resource, action, purpose in requests:
        old = before.decide(subject, resource, action, purpose)
        new = after.decide(subject, resource, action, purpose)
        if not _changed(old, new):
            continue
        if new.allowed and not old.allowed:
            counts["allowed"] += 1
        elif old.allowed and not new.allowed:
            counts["denied"] += 1
        else:
            counts["view"] += 1
        if len(flips) < FLIPS_SHOWN:
            flips.append(
                MatrixFlip(
                    organization=subject.organization,
                    kind=subject.kind,
                    roles=sorted(subject.roles),
                    object=resource.name,
                    action=action,
                    purpose=purpose,
                    before=Outcome.of(old),
                    after=Outcome.of(new),
                )
            )
    total = counts["allowed"] + counts["denied"] + counts["view"]
    return MatrixResult(
        decisions=len(requests),
        flips=total,
        newly_allowed=counts["allowed"],
        newly_denied=counts["denied"],
        view_changed=counts["view"],
        shown=flips,
    )


@dataclass
class _Group:
    requests: int = 0
    records: int = 0
    first: datetime | None = None
    last: datetime | None = None
    samples: list[int] = field(default_factory=list)


class _Replayer:
    """Subjects, products and grants looked up once per window, not once per entry."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._subjects: dict[str, Subject | None] = {}
        self._products: dict[str, Described | None] = {}
        self._grants: dict[tuple[str, str], list[Grant]] = {}

    def subject(self, client_id: str) -> Subject | None:
        if client_id not in self._subjects:
            row = self.session.execute(
                select(Principal.roles, Organization.slug, Organization.kind)
                .join(Organization, Organization.id == Principal.organization_id)
                .where(Principal.client_id == client_id)
            ).one_or_none()
            self._subjects[client_id] = (
                Subject(client_id, row[1], row[2], frozenset(row[0])) if row else None
            )
        return self._subjects[client_id]

    def product(self, slug: str) -> Described | None:
        if slug not in self._products:
            try:
                self._products[slug] = catalog.describe(self.session, slug)
            except NotFound:
                self._products[slug] = None
        return self._products[slug]

    def granted(self, organization: str, product: str, moment: datetime) -> frozenset[str]:
        """The purposes the organisation held a grant for at that moment (quota aside)."""
        key = (organization, product)
        if key not in self._grants:
            self._grants[key] = list(
                self.session.scalars(
                    select(Grant).where(
                        Grant.organization == organization,
                        Grant.product == product,
                        Grant.partner.is_(None),  # type: ignore[union-attr]
                    )
                )
            )
        return frozenset(
            grant.purpose
            for grant in self._grants[key]
            if as_utc(grant.created_at) <= moment < as_utc(grant.expires_at)
            and (grant.revoked_at is None or moment < as_utc(grant.revoked_at))
        )


def replay(
    session: Session,
    proposed: PolicyEngine,
    since: datetime | None,
    until: datetime | None,
    max_entries: int,
) -> ReplayResult:
    query = (
        select(AuditEntry)
        .where(AuditEntry.product.is_not(None))
        .order_by(AuditEntry.index)
        .limit(max_entries)
    )
    if since is not None:
        query = query.where(AuditEntry.recorded_at >= since)
    if until is not None:
        query = query.where(AuditEntry.recorded_at < until)
    replayer = _Replayer(session)
    skipped: Counter[str] = Counter()
    groups: dict[tuple[Any, ...], _Group] = {}
    replayed = unchanged = 0
    for entry in session.scalars(query.execution_options(yield_per=1000)):
        action = REPLAYED.get(entry.action)
        if entry.policy_version is None:
            skipped["refused before the policy was asked (e.g. no such product)"] += 1
            continue
        if action is None:
            skipped[f"action {entry.action} is not replayed"] += 1
            continue
        subject = replayer.subject(entry.actor or "")
        described = replayer.product(entry.product or "")
        if subject is None or described is None:
            skipped["the principal or product no longer exists"] += 1
            continue
        moment = as_utc(entry.recorded_at)
        resource = replace(
            described.resource,
            granted=replayer.granted(subject.organization, described.product.slug, moment),
        )
        decision = proposed.decide(subject, resource, action, entry.purpose or "")
        replayed += 1
        was_allowed = _allowed_by_policy(entry)
        if was_allowed == decision.allowed and (not was_allowed or entry.view == decision.view):
            unchanged += 1
            continue
        recorded = f"allowed ({entry.view})" if was_allowed else "denied"
        now = f"allowed ({decision.view})" if decision.allowed else "denied"
        key = (entry.organization, entry.actor, entry.product, action, entry.purpose, recorded, now)
        group = groups.setdefault(key, _Group())
        group.requests += 1
        group.records += entry.record_count
        group.first = group.first or moment
        group.last = moment
        if len(group.samples) < SAMPLES:
            group.samples.append(entry.index)
    return ReplayResult(
        window={"from": since and to_rfc3339(since), "to": until and to_rfc3339(until)},
        replayed=replayed,
        flipped=replayed - unchanged,
        unchanged=unchanged,
        skipped=dict(skipped),
        groups=sorted(
            (_replay_group(key, group) for key, group in groups.items()),
            key=lambda g: -g.requests,
        ),
    )


def _allowed_by_policy(entry: AuditEntry) -> bool:
    """What the policy answered then. A refusal that carries a view was allowed by
    the policy and refused for another reason (a publish batch that failed
    validation): the policy's answer was yes."""
    return entry.decision == "allow" or entry.view is not None


def _replay_group(key: tuple[Any, ...], group: _Group) -> ReplayGroup:
    organization, actor, product, action, purpose, recorded, proposed = key
    verb = {
        "read": "reads",
        "publish": "publishes",
        "update": "updates",
        "aggregate": "aggregate queries",
        "reidentify": "re-identifications",
    }.get(action, "access requests")
    change = "would have been denied" if proposed == "denied" else f"would have been {proposed}"
    summary = (
        f"{group.requests} {verb} of {product} by {actor} ({organization})"
        + (f" for {purpose}" if purpose else "")
        + f", {recorded} then, {change}"
    )
    return ReplayGroup(
        summary=summary,
        organization=organization,
        actor=actor,
        product=product,
        action=action,
        purpose=purpose,
        recorded=recorded,
        proposed=proposed,
        requests=group.requests,
        records=group.records,
        first=to_rfc3339(group.first) if group.first else "",
        last=to_rfc3339(group.last) if group.last else "",
        sample_entries=group.samples,
    )

"""Reading and writing policy versions in our own session.

This is the adapter between Casbin's lines and the database, kept to what we
need: it writes in the caller's transaction (so a change and its audit entry
commit or fail together, which the stock SQLAlchemy adapters cannot do), it
records every version, and it loads either a whole version or the difference
between two, so a worker catches up on one edit without reloading 100,000 lines.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from exchange.errors import NotFound
from exchange.policy.models import HEAD_ID, PolicyHead, PolicyRule, PolicyVersion
from exchange.timeutil import utcnow
from policies import PolicyEngine, PolicyLine, format_line, parse_lines
from policies.lines import policy_digest

_CHUNK = 500  # lines per UPDATE … IN (…), well under every driver's parameter limit


@dataclass(frozen=True)
class Change:
    """A new version to write: the lines it adds and removes, and why."""

    added: Sequence[PolicyLine]
    removed: Sequence[PolicyLine]
    author: str
    reason: str
    restored_from: int | None = None
    tests_overridden: str | None = None


def head_version(session: Session) -> int:
    return session.scalar(select(PolicyHead.version).where(PolicyHead.id == HEAD_ID)) or 0


def lock_head(session: Session) -> int:
    """The version in force, with the head locked until the transaction ends."""
    version = session.scalar(
        select(PolicyHead.version).where(PolicyHead.id == HEAD_ID).with_for_update()
    )
    if version is None:
        raise NotFound("the policy is not initialised; run `exchange db upgrade`")
    return version


def _alive_at(version: int):  # type: ignore[no-untyped-def]
    return and_(
        PolicyRule.added_in <= version,
        or_(PolicyRule.removed_in.is_(None), PolicyRule.removed_in > version),
    )


def lines_at(session: Session, version: int) -> list[PolicyLine]:
    """Every line of a version, in the order they were added."""
    texts = session.scalars(
        select(PolicyRule.line).where(_alive_at(version)).order_by(PolicyRule.id)
    )
    return parse_lines(texts)


def load_engine(session: Session) -> PolicyEngine:
    version = head_version(session)
    return PolicyEngine(lines_at(session, version), label(version))


def label(version: int) -> str:
    """How decisions and audit entries name a version."""
    return f"v{version}"


def number_of(version_label: str) -> int | None:
    text = version_label.removeprefix("v")
    return int(text) if text.isdigit() else None


def caught_up(session: Session, engine: PolicyEngine) -> PolicyEngine:
    """`engine` moved to the version in force by applying only what changed since."""
    have = number_of(engine.version)
    target = head_version(session)
    if have is None or have > target:
        return PolicyEngine(lines_at(session, target), label(target))
    if have == target:
        return engine
    rows = session.execute(
        select(PolicyRule.line, PolicyRule.added_in, PolicyRule.removed_in)
        .where(
            or_(
                and_(PolicyRule.added_in > have, PolicyRule.added_in <= target),
                and_(PolicyRule.removed_in > have, PolicyRule.removed_in <= target),
            )
        )
        .order_by(PolicyRule.id)
    ).all()
    added = [
        line
        for line, added_in, removed_in in rows
        if added_in > have and _alive(removed_in, target)
    ]
    removed = [line for line, added_in, removed_in in rows if added_in <= have]
    return engine.changed(parse_lines(added), parse_lines(removed), label(target))


def _alive(removed_in: int | None, version: int) -> bool:
    return removed_in is None or removed_in > version


def write(
    session: Session, current: int, change: Change, lines_after: Sequence[PolicyLine]
) -> PolicyVersion:
    """Store `change` as version current + 1 and move the head; the caller holds the
    head lock (`lock_head`) and commits together with the audit entry."""
    number = current + 1
    texts = [format_line(line) for line in change.removed]
    for start in range(0, len(texts), _CHUNK):
        session.execute(
            update(PolicyRule)
            .where(
                PolicyRule.line.in_(texts[start : start + _CHUNK]),
                PolicyRule.removed_in.is_(None),
            )
            .values(removed_in=number)
        )
    session.add_all(PolicyRule(line=format_line(line), added_in=number) for line in change.added)
    version = PolicyVersion(
        number=number,
        digest=policy_digest(lines_after),
        created_at=utcnow(),
        author=change.author,
        reason=change.reason,
        restored_from=change.restored_from,
        tests_overridden=change.tests_overridden,
        added=len(change.added),
        removed=len(change.removed),
        line_count=len(lines_after),
    )
    session.add(version)
    session.execute(update(PolicyHead).where(PolicyHead.id == HEAD_ID).values(version=number))
    session.flush()
    return version


def versions(session: Session, *, before: int | None, limit: int) -> list[PolicyVersion]:
    query = select(PolicyVersion).order_by(PolicyVersion.number.desc()).limit(limit)
    if before is not None:
        query = query.where(PolicyVersion.number < before)
    return list(session.scalars(query))


def version(session: Session, number: int) -> PolicyVersion:
    found = session.get(PolicyVersion, number)
    if found is None:
        newest = session.scalar(select(func.max(PolicyVersion.number)))
        raise NotFound(f"no policy version {number} (versions are 1 to {newest})")
    return found


def diff_of(session: Session, number: int) -> tuple[list[str], list[str]]:
    """The lines a version added and removed, as text."""
    added = session.scalars(
        select(PolicyRule.line).where(PolicyRule.added_in == number).order_by(PolicyRule.id)
    )
    removed = session.scalars(
        select(PolicyRule.line).where(PolicyRule.removed_in == number).order_by(PolicyRule.id)
    )
    return list(added), list(removed)

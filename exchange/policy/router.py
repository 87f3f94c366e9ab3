"""The policy, governed by stewards: read, change, dry-run, history, restore, tests.

Every route needs `manage` on `system:policy`. Every change (and every change
refused because policy tests fail) is an audit entry; the change commits with
its entry and is then in force in this worker at once and in every other worker
within a second (see exchange/policy/live.py).
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.auditing.trail import record_allowed
from exchange.auth import SystemAccess, log_refusal, system_access
from exchange.db import SessionDep
from exchange.errors import Conflict, NotFound
from exchange.pagination import decode_cursor, encode_cursor
from exchange.policy import cases, dryrun, service, store
from exchange.policy.cases import PolicyCase, PolicyCasePublic
from exchange.policy.models import PolicyTest, PolicyVersion
from exchange.policy.service import Applied, Proposal, TestsFail
from exchange.timeutil import as_utc, query_time, to_rfc3339
from policies import format_line

router = APIRouter(prefix="/v1/policies", tags=["policies"])

ManagePolicy = Annotated[SystemAccess, system_access("policy", "manage")]
LOGGED_LINES = 200  # an audit entry lists at most this many added and removed lines


class PolicyChange(BaseModel):
    lines: list[str] = Field(
        description="Every line of the new policy, e.g. "
        '"p, kind:government+role:subscriber, tier:open, read, law_enforcement, raw, allow".'
    )
    reason: str = Field(min_length=3, max_length=2000)
    expected_version: int | None = Field(
        default=None, description="Refuse unless this is still the version in force."
    )
    override_tests: str | None = Field(
        default=None,
        min_length=3,
        max_length=2000,
        description="Apply even if policy tests fail, for this reason (audited).",
    )


class Restore(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)
    override_tests: str | None = Field(default=None, min_length=3, max_length=2000)


class ReplayWindow(BaseModel):
    since: str | None = Field(default=None, alias="from", description="RFC 3339, inclusive.")
    until: str | None = Field(default=None, alias="to", description="RFC 3339, exclusive.")
    max_entries: int = Field(default=1_000_000, ge=1, le=10_000_000)


class DryRun(BaseModel):
    lines: list[str]
    matrix: bool = Field(default=True, description="Compare every organisation × product × …")
    replay: ReplayWindow | None = Field(
        default=None, description="Replay the audit log's requests in this window."
    )


class VersionPublic(BaseModel):
    version: int
    digest: str
    created_at: str
    author: str
    reason: str
    restored_from: int | None
    tests_overridden: str | None
    added: int
    removed: int
    line_count: int

    @classmethod
    def of(cls, row: PolicyVersion) -> "VersionPublic":
        return cls(
            version=row.number,
            digest=row.digest,
            created_at=to_rfc3339(as_utc(row.created_at)),
            author=row.author,
            reason=row.reason,
            restored_from=row.restored_from,
            tests_overridden=row.tests_overridden,
            added=row.added,
            removed=row.removed,
            line_count=row.line_count,
        )


class PolicyPublic(VersionPublic):
    lines: list[str]


class VersionDetail(VersionPublic):
    added_lines: list[str]
    removed_lines: list[str]
    lines: list[str] | None


class VersionList(BaseModel):
    versions: list[VersionPublic]
    next_cursor: str | None


class Changed(BaseModel):
    version: VersionPublic
    added_lines: list[str]
    removed_lines: list[str]
    failing_tests: list[dict[str, str]]


class CaseResult(PolicyCasePublic):
    passes: bool
    failures: list[dict[str, str]]


class CaseList(BaseModel):
    tests: list[CaseResult]


class DryRunResult(BaseModel):
    base_version: int
    added_lines: list[str]
    removed_lines: list[str]
    failing_tests: list[dict[str, str]]
    matrix: dryrun.MatrixResult | None
    replay: dryrun.ReplayResult | None


@router.get("", response_model=PolicyPublic)
def current(session: SessionDep, access: ManagePolicy) -> PolicyPublic:
    """The policy in force: its version, who changed it and why, and every line."""
    number = store.head_version(session)
    meta = VersionPublic.of(store.version(session, number))
    lines = [format_line(line) for line in store.lines_at(session, number)]
    return PolicyPublic(**meta.model_dump(), lines=lines)


def _change(
    request: Request,
    session: Session,
    access: SystemAccess,
    texts: list[str],
    *,
    expected: int | None,
    reason: str,
    override: str | None,
    restored_from: int | None = None,
) -> Changed:
    live = request.app.state.policy
    base = service.base_under_lock(session, live.current, expected)
    proposal = service.propose(session, base, texts)
    try:
        applied = service.apply(
            session,
            proposal,
            author=access.caller.client_id,
            reason=reason,
            override=override,
            restored_from=restored_from,
        )
    except TestsFail as error:
        log_refusal(
            session,
            request,
            access.caller,
            action="policy.change",
            reason=error.detail,
            decision=access.decision,
        )
        raise
    _log_change(session, request, access, proposal, applied)
    session.commit()
    live.adopt(applied.engine)
    return Changed(
        version=VersionPublic.of(applied.version),
        added_lines=[format_line(line) for line in proposal.added],
        removed_lines=[format_line(line) for line in proposal.removed],
        failing_tests=[failure.__dict__ for failure in applied.failures],
    )


def _log_change(
    session: Session, request: Request, access: SystemAccess, proposal: Proposal, applied: Applied
) -> None:
    version = applied.version
    record_allowed(
        session,
        request,
        access,
        action="policy.change",
        details={
            "version": version.number,
            "digest": version.digest,
            "reason": version.reason,
            "restored_from": version.restored_from,
            "tests_overridden": version.tests_overridden,
            "failing_tests": [failure.case for failure in applied.failures],
            "added": len(proposal.added),
            "removed": len(proposal.removed),
            "added_lines": [format_line(line) for line in proposal.added[:LOGGED_LINES]],
            "removed_lines": [format_line(line) for line in proposal.removed[:LOGGED_LINES]],
        },
    )


@router.put("", response_model=Changed)
def change(
    request: Request, session: SessionDep, access: ManagePolicy, data: PolicyChange
) -> Changed:
    """Replace the policy with these lines, as a new version. Refused, with the
    policy in force unchanged, if a line is invalid or names what does not exist,
    or if a policy test fails (unless `override_tests` gives a reason)."""
    return _change(
        request,
        session,
        access,
        data.lines,
        expected=data.expected_version,
        reason=data.reason,
        override=data.override_tests,
    )


@router.post("/dry-run", response_model=DryRunResult)
def dry_run(
    request: Request, session: SessionDep, access: ManagePolicy, data: DryRun
) -> DryRunResult:
    """What the proposed lines would change: failing tests, flips over the full
    matrix, and flips over the requests the audit log recorded in a window."""
    base = store.caught_up(session, request.app.state.policy.current)
    proposal = service.propose(session, base, data.lines)
    replay = None
    if data.replay is not None:
        since = query_time(data.replay.since, "replay.from")
        until = query_time(data.replay.until, "replay.to")
        replay = dryrun.replay(session, proposal.engine, since, until, data.replay.max_entries)
    result = DryRunResult(
        base_version=store.number_of(base.version) or 0,
        added_lines=[format_line(line) for line in proposal.added],
        removed_lines=[format_line(line) for line in proposal.removed],
        failing_tests=[f.__dict__ for f in cases.failures(session, proposal.engine)],
        matrix=dryrun.matrix(session, base, proposal.engine) if data.matrix else None,
        replay=replay,
    )
    record_allowed(
        session,
        request,
        access,
        action="policy.dry_run",
        details={
            "base_version": result.base_version,
            "added": len(proposal.added),
            "removed": len(proposal.removed),
            "replay": data.replay.model_dump(by_alias=True) if data.replay else None,
        },
    )
    return result


@router.get("/versions", response_model=VersionList)
def versions(
    session: SessionDep,
    access: ManagePolicy,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> VersionList:
    """Every version, newest first."""
    rows = store.versions(session, before=decode_cursor(cursor), limit=limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    return VersionList(
        versions=[VersionPublic.of(row) for row in rows],
        next_cursor=encode_cursor(rows[-1].number) if more and rows else None,
    )


@router.get("/versions/{number}", response_model=VersionDetail)
def version(
    session: SessionDep,
    access: ManagePolicy,
    number: int,
    lines: Annotated[bool, Query(description="Also list every line of this version.")] = False,
) -> VersionDetail:
    """One version: what it added and removed, and optionally all its lines."""
    row = store.version(session, number)
    added, removed = store.diff_of(session, number)
    every = [format_line(line) for line in store.lines_at(session, number)] if lines else None
    return VersionDetail(
        **VersionPublic.of(row).model_dump(),
        added_lines=added,
        removed_lines=removed,
        lines=every,
    )


@router.post("/versions/{number}/restore", response_model=Changed)
def restore(
    request: Request, session: SessionDep, access: ManagePolicy, number: int, data: Restore
) -> Changed:
    """Put an earlier version's lines back in force, as a new version."""
    store.version(session, number)
    texts = [format_line(line) for line in store.lines_at(session, number)]
    return _change(
        request,
        session,
        access,
        texts,
        expected=None,
        reason=data.reason,
        override=data.override_tests,
        restored_from=number,
    )


def _result(session: Session, request: Request, case: PolicyCasePublic) -> CaseResult:
    found = cases.failures(session, request.app.state.policy.current, [case])
    return CaseResult(**case.model_dump(), passes=not found, failures=[f.__dict__ for f in found])


@router.get("/tests", response_model=CaseList)
def list_tests(request: Request, session: SessionDep, access: ManagePolicy) -> CaseList:
    """Every stored policy test, and whether it holds under the policy in force."""
    return CaseList(tests=[_result(session, request, case) for case in cases.stored(session)])


@router.post("/tests", status_code=201, response_model=CaseResult)
def add_test(
    request: Request, session: SessionDep, access: ManagePolicy, data: PolicyCase
) -> CaseResult:
    """Store an expected decision; from now on every policy change must keep it true.
    The answer says whether it holds under the policy in force."""
    cases.check_references(session, data)
    if session.scalar(select(PolicyTest.id).where(PolicyTest.name == data.name)) is not None:
        raise Conflict(f"a policy test named {data.name!r} exists")
    row = PolicyTest(
        name=data.name, case=data.model_dump(mode="json"), author=access.caller.client_id
    )
    session.add(row)
    session.flush()
    case = PolicyCasePublic(**row.case, id=row.id, author=row.author)
    record_allowed(
        session, request, access, action="policy.test_add", details={"test": row.id, **row.case}
    )
    return _result(session, request, case)


@router.delete("/tests/{test_id}", status_code=204)
def delete_test(
    request: Request,
    session: SessionDep,
    access: ManagePolicy,
    test_id: int,
    reason: Annotated[str, Query(min_length=3, max_length=2000)],
) -> None:
    """Remove a policy test, saying why (audited)."""
    row = session.get(PolicyTest, test_id)
    if row is None:
        raise NotFound(f"no policy test {test_id}")
    session.delete(row)
    record_allowed(
        session,
        request,
        access,
        action="policy.test_delete",
        details={"test": test_id, "name": row.name, "reason": reason, "case": row.case},
    )

"""The steward's policy editor: the policy in force as text, a dry-run of an edit
(the lines it adds and removes, the policy tests it breaks, whose decisions flip
over the full matrix and over the requests of the last days), applying it with a
reason, and the versions, each of which can be restored.

Every page needs `manage` on `system:policy`, decided as the API decides it, and
calls the API's route functions (`dry_run`, `change`, `restore`, …). A refused
edit (an invalid line, a failing test, a concurrent change) comes back with the
steward's text kept and the problem shown beside it; the session is rolled back
first, so nothing of it is kept but the refusal the API itself logged.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from exchange.auth import SystemAccess
from exchange.console.pages import ConsoleRoute, page, parsed, redirect
from exchange.console.session import Form, FormDep, console_access
from exchange.db import SessionDep
from exchange.errors import BadRequest, ExchangeError, FieldError
from exchange.policy import router as policy_api
from exchange.policy.dryrun import MatrixResult, Outcome
from exchange.policy.router import DryRun, DryRunResult, PolicyChange, ReplayWindow, Restore
from exchange.timeutil import to_rfc3339, utcnow

router = APIRouter(prefix="/policy", route_class=ConsoleRoute, tags=["console"])

ManagePolicy = Annotated[SystemAccess, console_access("policy", "manage")]
REPLAY_DAYS = 7
MAX_REPLAY_DAYS = 366
VERSIONS_PAGE = 50


@dataclass(frozen=True)
class Draft:
    """The editor's text as the steward left it, and the policy lines it gives the
    API: blank lines and `#` comments are skipped, so each line's place in the
    editor is kept to say where a problem is."""

    text: str
    lines: list[str]
    places: list[int]

    @classmethod
    def of(cls, text: str) -> "Draft":
        kept = [
            (number, raw.strip())
            for number, raw in enumerate(text.splitlines(), start=1)
            if raw.strip() and not raw.strip().startswith("#")
        ]
        return cls(text, [line for _, line in kept], [number for number, _ in kept])

    def where(self, problem: FieldError) -> str:
        at = problem.index
        if problem.field == "lines" and at is not None and 0 <= at < len(self.places):
            return f"line {self.places[at]}: {self.lines[at]}"
        return problem.field or ""


@dataclass(frozen=True)
class FlipRow:
    """One matrix flip as the page shows it: who gains or loses access, or sees otherwise."""

    change: str  # gains, loses, view
    organization: str
    roles: list[str]
    object: str
    action: str
    purpose: str
    before: str
    after: str


def _outcome(outcome: Outcome, fields: list[str]) -> str:
    said = f"allowed ({outcome.view})" if outcome.allowed else "denied"
    if fields and outcome.allowed:
        said += ": " + ", ".join(f"{name} {outcome.fields.get(name, '-')}" for name in fields)
    return said


def flip_rows(matrix: MatrixResult | None) -> list[FlipRow]:
    """Those who gain access first, then those who lose it, then changed views."""
    rows = []
    for flip in matrix.shown if matrix else []:
        old, new = flip.before, flip.after
        if new.allowed != old.allowed:
            change, fields = ("gains" if new.allowed else "loses"), []
        else:
            names = {*old.fields, *new.fields}
            change = "view"
            fields = sorted(n for n in names if old.fields.get(n) != new.fields.get(n))
        rows.append(
            FlipRow(
                change,
                flip.organization,
                flip.roles,
                flip.object,
                flip.action,
                flip.purpose,
                _outcome(old, fields),
                _outcome(new, fields),
            )
        )
    order = {"gains": 0, "loses": 1, "view": 2}
    return sorted(rows, key=lambda row: order[row.change])


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


@dataclass(frozen=True)
class Attempt:
    """An edit the steward sent, as typed, and what the API made of it: the dry-run's
    result, or the refusal. The editor shows it again so nothing typed is lost."""

    draft: Draft
    expected: int | None  # the version the editor was loaded from, as posted
    reason: str
    override: str
    days: str
    dry: DryRunResult | None = None
    error: ExchangeError | None = None

    @classmethod
    def of(cls, form: Form) -> "Attempt":
        return cls(
            Draft.of(form.get("lines")),
            _number(form.get("expected_version")),
            form.get("reason"),
            form.get("override_tests"),
            form.get("replay_days", str(REPLAY_DAYS)),
        )


def _problems(
    error: ExchangeError | None, where: Callable[[FieldError], str] = lambda p: p.field or ""
) -> list[tuple[str, str]]:
    """A refusal's field errors as (where, why) for `steward_problem.html`; `where`
    may name the editor's line instead of the field."""
    return [(where(problem), problem.reason) for problem in error.errors] if error else []


def _failures(error: ExchangeError | None) -> list[Any]:
    """The policy tests a refused change breaks, as the API's 409 names them."""
    return error.extensions.get("failures", []) if error else []


def _editor(
    request: Request,
    session: Session,
    access: SystemAccess,
    attempt: Attempt | None = None,
    status: int = 200,
    notice: str | None = None,
) -> Response:
    """The editor page: the policy in force and its tests, always read afresh (after
    a rollback too), and the steward's `attempt` if there is one — its text kept
    (else the policy in force), its dry-run or its refusal beside it. `expected`
    stays the version the edit started from, so a stale edit is said to be stale."""
    policy = policy_api.current(session=session, access=access)
    tests = policy_api.list_tests(request=request, session=session, access=access)
    if attempt is None:
        draft = Draft.of("\n".join(policy.lines) + "\n")
        attempt = Attempt(draft, policy.version, "", "", str(REPLAY_DAYS))
    dry, error = attempt.dry, attempt.error
    failing = dry.failing_tests if dry is not None else _failures(error)
    return page(
        request,
        "steward_policy.html",
        status,
        policy=policy,
        tests=tests.tests,
        text=attempt.draft.text,
        expected=policy.version if attempt.expected is None else attempt.expected,
        reason=attempt.reason,
        override=attempt.override,
        days=attempt.days,
        dry=dry,
        flips=flip_rows(dry.matrix if dry else None),
        failing=failing,
        error=error,
        problems=_problems(error, attempt.draft.where),
        tests_failed=bool(failing) or bool(attempt.override.strip()),
        notice=notice,
    )


@router.get("", include_in_schema=False)
def policy(
    request: Request,
    session: SessionDep,
    access: ManagePolicy,
    done: str | None = None,
    version: int | None = None,
    restored: int | None = None,
) -> Response:
    """The policy in force in the editor, and the stored policy tests with whether they hold."""
    notice = None
    if done == "applied" and version:
        notice = f"Policy version {version} applied: it is in force now."
    elif done == "restored" and version and restored:
        notice = f"Version {restored} restored as policy version {version}: it is in force now."
    return _editor(request, session, access, notice=notice)


def _replay_days(form: Form) -> int:
    days = _number(form.get("replay_days", str(REPLAY_DAYS)))
    if days is None or not 1 <= days <= MAX_REPLAY_DAYS:
        problem = FieldError(f"a whole number of days, 1 to {MAX_REPLAY_DAYS}", "replay_days")
        raise BadRequest("the replay window is a whole number of days", errors=[problem])
    return days


@router.post("/dry-run", include_in_schema=False)
def dry_run(request: Request, session: SessionDep, access: ManagePolicy, form: FormDep) -> Response:
    """The API's dry-run of the edited lines: the full matrix, and a replay of the
    last `replay_days` days of the audit log. Nothing changes but its audit entry."""
    attempt = Attempt.of(form)
    try:
        since = to_rfc3339(utcnow() - timedelta(days=_replay_days(form)))
        data = DryRun(
            lines=attempt.draft.lines,
            matrix=True,
            replay=ReplayWindow.model_validate({"from": since}),
        )
        result = policy_api.dry_run(request, session, access, data)
    except ExchangeError as error:
        session.rollback()
        return _editor(request, session, access, replace(attempt, error=error), error.status)
    return _editor(request, session, access, replace(attempt, dry=result))


@router.post("/apply", include_in_schema=False)
def apply(request: Request, session: SessionDep, access: ManagePolicy, form: FormDep) -> Response:
    """The API's PUT /v1/policies, refused (409) if the policy changed since the
    editor was loaded: `expected_version` is the version it was loaded from."""
    attempt = Attempt.of(form)
    try:
        data = parsed(
            PolicyChange,
            lines=attempt.draft.lines,
            reason=form.get("reason").strip(),
            expected_version=form.get("expected_version").strip() or None,
            override_tests=form.get("override_tests").strip() or None,
        )
        changed = policy_api.change(request, session, access, data)
    except ExchangeError as error:
        session.rollback()
        return _editor(request, session, access, replace(attempt, error=error), error.status)
    return redirect(f"/console/steward/policy?done=applied&version={changed.version.version}")


@router.get("/versions", include_in_schema=False)
def versions(
    request: Request, session: SessionDep, access: ManagePolicy, cursor: str | None = None
) -> Response:
    """Every version, newest first."""
    listing = policy_api.versions(
        session=session, access=access, cursor=cursor, limit=VERSIONS_PAGE
    )
    return page(request, "steward_versions.html", listing=listing, paged=bool(cursor))


def _version_page(
    request: Request,
    session: Session,
    access: SystemAccess,
    number: int,
    status: int = 200,
    *,
    error: ExchangeError | None = None,
    reason: str = "",
    override: str = "",
) -> Response:
    detail = policy_api.version(session=session, access=access, number=number, lines=True)
    failing = _failures(error)
    head = policy_api.versions(session=session, access=access, cursor=None, limit=1)
    return page(
        request,
        "steward_version.html",
        status,
        detail=detail,
        in_force=head.versions[0].version == number,
        error=error,
        failing=failing,
        problems=_problems(error),
        reason=reason,
        override=override,
        tests_failed=bool(failing) or bool(override.strip()),
    )


@router.get("/versions/{number}", include_in_schema=False)
def version(request: Request, session: SessionDep, access: ManagePolicy, number: int) -> Response:
    """What the version added and removed, all its lines, and a form to restore it."""
    return _version_page(request, session, access, number)


@router.post("/versions/{number}/restore", include_in_schema=False)
def restore(
    request: Request, session: SessionDep, access: ManagePolicy, form: FormDep, number: int
) -> Response:
    """The API's restore: the version's lines back in force, as a new version."""
    reason, override = form.get("reason"), form.get("override_tests")
    try:
        data = parsed(Restore, reason=reason.strip(), override_tests=override.strip() or None)
        changed = policy_api.restore(request, session, access, number, data)
    except ExchangeError as error:
        session.rollback()
        return _version_page(
            request,
            session,
            access,
            number,
            error.status,
            error=error,
            reason=reason,
            override=override,
        )
    return redirect(
        f"/console/steward/policy?done=restored&version={changed.version.version}&restored={number}"
    )

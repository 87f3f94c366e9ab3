"""A Casbin enforcer over our model, loaded from policy lines, deciding requests.

The enforcer is built once per policy and never mutated afterwards: Casbin's
`load_policy` is not safe while other threads enforce (see docs/policies.md), so a
policy change builds a new engine and swaps the reference.
"""

import hashlib
import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import casbin
from casbin import persist
from casbin.model import Model

from policies.decision import (
    ANY_VIEW,
    NO_VIEW,
    VIEWS_MOST_PROTECTIVE_FIRST,
    Decision,
    PolicyError,
    Resource,
    Subject,
)
from policies.explain import denial_reason

MODEL_PATH = Path(__file__).with_name("model.conf")
DEFAULT_POLICY_PATH = Path(__file__).with_name("default.csv")
_FIELDS = 6
# Casbin logs every request, denials at WARNING, with the subject's attributes; the
# audit log is the record of decisions, so its own log only speaks of errors.
_CASBIN_LOG = logging.getLogger("policies.casbin")
_CASBIN_LOG.setLevel(logging.ERROR)
_EFFECTS = {"allow", "deny"}


@lru_cache(maxsize=65_536)
def _attributes(text: str) -> frozenset[str]:
    return frozenset(text.split())


def subject_matches(subject: str, pattern: str) -> bool:
    """`*`, or every `+`-joined attribute of the pattern is one of the subject's."""
    if pattern == "*":
        return True
    have = _attributes(subject)
    return all(term in have for term in pattern.split("+"))


def object_matches(subject: str, obj: str, pattern: str) -> bool:
    """`*`, `@own` (the subject's organisation owns the product), or one attribute."""
    if pattern == "*":
        return True
    have = _attributes(obj)
    if pattern == "@own":
        orgs = [a[4:] for a in _attributes(subject) if a.startswith("org:")]
        return any(f"owner:{org}" in have for org in orgs)
    return pattern in have


def purpose_matches(obj: str, purpose: str, pattern: str) -> bool:
    """`*` for any; otherwise the product must declare the purpose, and the
    pattern is either `@declared` or that very purpose."""
    if pattern == "*":
        return True
    if not purpose or f"purpose:{purpose}" not in _attributes(obj):
        return False
    return pattern in ("@declared", purpose)


def parse_policy(text: str) -> list[tuple[str, ...]]:
    """Policy lines from CSV text; comments and blank lines skipped.

    Raises PolicyError naming the line for a wrong field count, an unknown effect
    or a value Casbin would misread (Casbin itself would silently ignore some).
    """
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        values = tuple(value.strip() for value in stripped.split(","))
        if values[0] != "p" or len(values) != _FIELDS + 1:
            raise PolicyError(f"line {number}: expected 'p' and {_FIELDS} values: {stripped!r}")
        if values[-1] not in _EFFECTS:
            raise PolicyError(f"line {number}: effect must be allow or deny, not {values[-1]!r}")
        if any(not value or any(c in value for c in "()\"' \t") for value in values):
            raise PolicyError(
                f"line {number}: empty value, space or forbidden character: {stripped!r}"
            )
        lines.append(values[1:])
    return lines


class _LinesAdapter(persist.Adapter):  # type: ignore[misc]  # casbin ships no types
    """Loads fixed, already validated lines; writing goes elsewhere."""

    def __init__(self, lines: Sequence[tuple[str, ...]]) -> None:
        self._lines = lines

    def load_policy(self, model: Model) -> None:
        for line in self._lines:
            persist.load_policy_line(", ".join(("p", *line)), model)


def policy_version(lines: Iterable[tuple[str, ...]]) -> str:
    digest = hashlib.sha256("\n".join(",".join(line) for line in lines).encode()).hexdigest()
    return f"sha256:{digest[:16]}"


class PolicyEngine:
    def __init__(self, lines: Sequence[tuple[str, ...]], version: str | None = None) -> None:
        self.lines = tuple(lines)
        self.version = version or policy_version(self.lines)
        try:
            self._enforcer = casbin.Enforcer(str(MODEL_PATH), _LinesAdapter(self.lines))
        except Exception as error:  # Casbin raises bare exceptions on bad models and lines
            raise PolicyError(f"the policy does not load: {error}") from error
        self._enforcer.logger = _CASBIN_LOG
        self._enforcer.add_function("subjectMatches", subject_matches)
        self._enforcer.add_function("objectMatches", object_matches)
        self._enforcer.add_function("purposeMatches", purpose_matches)

    @classmethod
    def default(cls) -> "PolicyEngine":
        return cls(parse_policy(DEFAULT_POLICY_PATH.read_text(encoding="utf-8")))

    def _enforce(self, request: tuple[str, ...]) -> tuple[bool, tuple[str, ...] | None]:
        try:
            allowed, rule = self._enforcer.enforce_ex(*request)
        except Exception as error:
            raise PolicyError(f"evaluating {request!r}: {error}") from error
        return bool(allowed), (tuple(rule) if rule else None)

    def decide(
        self, subject: Subject, resource: Resource, action: str, purpose: str = ""
    ) -> Decision:
        """Allowed or denied, with the view the data must be shaped into.

        A request is allowed when some allow line matches and no deny line does.
        Of the views that allowed lines grant, the most protective is chosen, so a
        broad line can never widen what a narrow protective line gives.
        """
        request = (subject.attributes(), resource.attributes(), action, purpose)
        allowed, rule = self._enforce((*request, ANY_VIEW))
        if not allowed:
            reason, hint = denial_reason(subject, resource, action, purpose, rule)
            return Decision(False, reason, rule, self.version, NO_VIEW, hint)
        for view in (*VIEWS_MOST_PROTECTIVE_FIRST, NO_VIEW):
            view_allowed, view_rule = self._enforce((*request, view))
            if view_allowed:
                return Decision(
                    True, f"allowed by {_show(view_rule)}", view_rule, self.version, view
                )
        raise PolicyError(f"allowed without a view: {request!r} matched {rule!r}")


def _show(rule: tuple[str, ...] | None) -> str:
    return "rule [" + ", ".join(rule) + "]" if rule else "no rule"

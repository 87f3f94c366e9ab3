"""Plain Casbin over the same model and lines: the definition `PolicyEngine` must match.

Used to check a proposed policy loads in Casbin, by the differential tests and
as the benchmark's baseline. Every decision here evaluates the matcher against
every line, so it is far too slow to serve requests at scale.
"""

import logging
from collections.abc import Iterable, Sequence

import casbin
from casbin import persist
from casbin.model import Model

from policies.decision import (
    ANY_VIEW,
    NO_VIEW,
    SENSITIVITIES,
    TREATMENTS_MOST_PROTECTIVE_FIRST,
    UNSHAPED,
    VIEWS_MOST_PROTECTIVE_FIRST,
    PolicyError,
    Resource,
    Subject,
)
from policies.engine import MODEL_PATH
from policies.lines import PolicyLine, format_line
from policies.terms import object_matches, purpose_matches, subject_matches

# Casbin logs every request, denials at WARNING, with the subject's attributes; the
# audit log is the record of decisions, so Casbin's own log only speaks of errors.
_CASBIN_LOG = logging.getLogger("policies.casbin")
_CASBIN_LOG.setLevel(logging.ERROR)

Outcome = tuple[bool, str, tuple[str, ...] | None, dict[str, str]]


class _LinesAdapter(persist.Adapter):  # type: ignore[misc]  # casbin ships no types
    """Loads fixed, already parsed lines; the exchange stores them itself."""

    def __init__(self, lines: Iterable[PolicyLine]) -> None:
        self._lines = lines

    def load_policy(self, model: Model) -> None:
        for line in self._lines:
            persist.load_policy_line(format_line(line), model)


def check_loads(lines: Sequence[PolicyLine]) -> None:
    """PolicyError unless Casbin's own loader accepts the model with these lines."""
    try:
        model = Model()
        model.load_model(str(MODEL_PATH))
        _LinesAdapter(lines).load_policy(model)
        for kind in ("p", "p2"):
            width = len(model["p"][kind].tokens)
            for values in model["p"][kind].policy:
                if len(values) != width:
                    raise PolicyError(f"Casbin reads {len(values)} values, expected {width}")
    except PolicyError:
        raise
    except Exception as error:  # Casbin raises bare exceptions on bad models and lines
        raise PolicyError(f"the policy does not load in Casbin: {error}") from error


class CasbinReference:
    def __init__(self, lines: Iterable[PolicyLine]) -> None:
        try:
            self._enforcer = casbin.Enforcer(str(MODEL_PATH), _LinesAdapter(list(lines)))
        except Exception as error:
            raise PolicyError(f"the policy does not load in Casbin: {error}") from error
        self._enforcer.logger = _CASBIN_LOG
        self._enforcer.add_function("subjectMatches", subject_matches)
        self._enforcer.add_function("objectMatches", object_matches)
        self._enforcer.add_function("purposeMatches", purpose_matches)
        self._fields = self._enforcer.new_enforce_context("2")

    @property
    def enforcer(self) -> casbin.Enforcer:
        return self._enforcer

    def decide(
        self, subject: Subject, resource: Resource, action: str, purpose: str = ""
    ) -> Outcome:
        """(allowed, view, rule, treatments), asking Casbin the way docs/policies.md says:
        allowed at all, then per view most protective first, then per sensitivity."""
        sub, obj = subject.attributes(), resource.attributes()
        allowed, rule = self._enforcer.enforce_ex(sub, obj, action, purpose, ANY_VIEW)
        if not allowed:
            return False, NO_VIEW, tuple(rule) if rule else None, {}
        for view in (*VIEWS_MOST_PROTECTIVE_FIRST, NO_VIEW):
            allowed, rule = self._enforcer.enforce_ex(sub, obj, action, purpose, view)
            if allowed:
                return True, view, tuple(rule), self._treatments(view, sub, obj, purpose)
        raise PolicyError(f"allowed without a view: {sub!r} {obj!r} {action!r} {purpose!r}")

    def _treatments(self, view: str, sub: str, obj: str, purpose: str) -> dict[str, str]:
        if view == NO_VIEW:
            return {}
        if view == "raw":
            return dict.fromkeys(SENSITIVITIES, "raw")
        return {
            sensitivity: next(
                (
                    treatment
                    for treatment in TREATMENTS_MOST_PROTECTIVE_FIRST
                    if self._enforcer.enforce(
                        self._fields, sub, obj, purpose, sensitivity, treatment
                    )
                ),
                UNSHAPED,
            )
            for sensitivity in SENSITIVITIES
        }

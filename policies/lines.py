"""Policy lines: reading them from text, refusing what Casbin would misread, and
the difference between two policies.

A line is a tuple starting with its type:
`("p", subject, object, action, purpose, view, effect)` decides whether and in
which view; `("p2", subject, object, purpose, sensitivity, treatment)` shapes the
fields of one sensitivity in a protected view. A policy is a set of lines: order
never changes a decision (deny overrides allow, the most protective view wins).
"""

import hashlib
from collections.abc import Iterable

from policies.decision import (
    NO_VIEW,
    SENSITIVITIES,
    TREATMENTS_FOR,
    VIEWS_MOST_PROTECTIVE_FIRST,
    PolicyError,
)

PolicyLine = tuple[str, ...]
ARITY = {"p": 6, "p2": 5}
EFFECTS = ("allow", "deny")
_FORBIDDEN = "()\"' \t,"


def _check(values: PolicyLine) -> str | None:
    """What is wrong with a line, or None."""
    kind = values[0]
    if kind not in ARITY or len(values) != ARITY[kind] + 1:
        return "expected 'p' and 6 values or 'p2' and 5 values"
    if any(not value or any(c in value for c in _FORBIDDEN) for value in values):
        return "empty value, space or forbidden character"
    if kind == "p":
        view, effect = values[5], values[6]
        if effect not in EFFECTS:
            return f"effect must be allow or deny, not {effect!r}"
        if view not in (*VIEWS_MOST_PROTECTIVE_FIRST, NO_VIEW):
            return f"view must be one of raw, protected or -, not {view!r}"
        return None
    sensitivity, treatment = values[4], values[5]
    if sensitivity not in SENSITIVITIES:
        return f"sensitivity must be one of {', '.join(SENSITIVITIES)}, not {sensitivity!r}"
    if treatment not in TREATMENTS_FOR[sensitivity]:
        known = ", ".join(TREATMENTS_FOR[sensitivity])
        return f"a {sensitivity} field's treatment is one of {known}, not {treatment!r}"
    return None


def parse_line(text: str) -> PolicyLine:
    """One line such as `p, *, tier:open, discover, *, -, allow`; PolicyError if bad."""
    values = tuple(value.strip() for value in text.strip().split(","))
    problem = _check(values)
    if problem:
        raise PolicyError(f"{problem}: {text.strip()!r}")
    return values


def _parse_numbered(numbered: Iterable[tuple[int, str]]) -> list[PolicyLine]:
    lines: list[PolicyLine] = []
    seen: dict[PolicyLine, int] = {}
    for number, text in numbered:
        try:
            line = parse_line(text)
        except PolicyError as error:
            raise PolicyError(f"line {number}: {error}", number) from None
        if line in seen:
            raise PolicyError(f"line {number}: repeats line {seen[line]}: {text.strip()!r}", number)
        seen[line] = number
        lines.append(line)
    return lines


def parse_lines(texts: Iterable[str]) -> list[PolicyLine]:
    """Lines given one per string (as the API takes them), numbered from 1 in errors.

    Refuses a bad line and a line given twice, naming them."""
    return _parse_numbered(enumerate(texts, start=1))


def parse_policy(text: str) -> list[PolicyLine]:
    """Lines from CSV text (a policy file); comments and blank lines are skipped but
    still counted, so errors name the line in the file."""
    return _parse_numbered(
        (number, raw)
        for number, raw in enumerate(text.splitlines(), start=1)
        if raw.strip() and not raw.strip().startswith("#")
    )


def format_line(line: PolicyLine) -> str:
    return ", ".join(line)


def policy_digest(lines: Iterable[PolicyLine]) -> str:
    """`sha256:` of the sorted lines: the same set of lines, the same digest."""
    text = "\n".join(sorted(format_line(line) for line in lines))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def difference(
    old: Iterable[PolicyLine], new: Iterable[PolicyLine]
) -> tuple[list[PolicyLine], list[PolicyLine]]:
    """(added, removed): lines only in `new`, lines only in `old`, each in its given order."""
    old_list, new_list = list(old), list(new)
    old_set, new_set = set(old_list), set(new_list)
    return [line for line in new_list if line not in old_set], [
        line for line in old_list if line not in new_set
    ]

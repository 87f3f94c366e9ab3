"""The matcher's custom functions: how a line's subject, object and purpose
patterns match a request's attributes. Casbin calls them (see model.conf), and
the indexed engine calls the very same functions on its candidate lines."""

from functools import lru_cache


@lru_cache(maxsize=65_536)
def attributes(text: str) -> frozenset[str]:
    return frozenset(text.split())


def subject_matches(subject: str, pattern: str) -> bool:
    """`*`, or every `+`-joined attribute of the pattern is one of the subject's."""
    if pattern == "*":
        return True
    have = attributes(subject)
    return all(term in have for term in pattern.split("+"))


def object_matches(subject: str, obj: str, pattern: str) -> bool:
    """`*`, `@own` (the subject's organisation owns the product), or one attribute."""
    if pattern == "*":
        return True
    have = attributes(obj)
    if pattern == "@own":
        orgs = [a[4:] for a in attributes(subject) if a.startswith("org:")]
        return any(f"owner:{org}" in have for org in orgs)
    return pattern in have


def purpose_matches(obj: str, purpose: str, pattern: str) -> bool:
    """`*` for any; otherwise the product must declare the purpose, and the
    pattern is `@declared`, `@granted` (the asking organisation holds an active
    grant for it) or that very purpose."""
    if pattern == "*":
        return True
    have = attributes(obj)
    if not purpose or f"purpose:{purpose}" not in have:
        return False
    if pattern == "@granted":
        return f"granted:{purpose}" in have
    return pattern in ("@declared", purpose)

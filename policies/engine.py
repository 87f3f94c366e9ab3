"""The one decision, fast at any policy size, deciding exactly as Casbin does.

Plain Casbin evaluates the matcher against every line on every request (about
3 decisions/s at 100,000 lines). This engine evaluates the same matcher
functions (`policies.terms`) and the same effect, but only on the lines that
could match: lines are indexed by (type, action or sensitivity, object pattern,
first subject term), and a request looks up the buckets of its own attributes.
A line that matches must sit in one of those buckets, because a matching
object pattern is `*`, `@own` or one of the object's attributes, and a matching
subject pattern is `*` or has all its terms — the first included — among the
subject's. `CasbinReference` (policies/reference.py) is the plain enforcer the
differential tests hold this engine to.

An engine is immutable once built: a policy change builds a new engine
(`changed` reuses every untouched bucket, so a one-line edit is cheap at
100,000 lines) and the caller swaps the reference. Decisions are cached per
engine, so a new version never serves an old answer.
"""

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from policies.decision import (
    NO_VIEW,
    SENSITIVITIES,
    TREATMENTS_MOST_PROTECTIVE_FIRST,
    UNSHAPED,
    VIEWS_MOST_PROTECTIVE_FIRST,
    Decision,
    PolicyError,
    Resource,
    Subject,
)
from policies.explain import denial_reason
from policies.lines import PolicyLine, parse_policy, policy_digest
from policies.terms import attributes, object_matches, purpose_matches, subject_matches

MODEL_PATH = Path(__file__).with_name("model.conf")
DEFAULT_POLICY_PATH = Path(__file__).with_name("default.csv")
CACHE_LIMIT = 100_000

BucketKey = tuple[str, str, str, str]
Bucket = tuple[tuple[int, PolicyLine], ...]
_VIEW_RANK = {view: rank for rank, view in enumerate((*VIEWS_MOST_PROTECTIVE_FIRST, NO_VIEW))}
_TREATMENT_RANK = {name: rank for rank, name in enumerate(TREATMENTS_MOST_PROTECTIVE_FIRST)}


def bucket_key(line: PolicyLine) -> BucketKey:
    """p lines by action, p2 lines by sensitivity; then object pattern, first subject term."""
    kind, subject, obj = line[0], line[1], line[2]
    selector = line[3] if kind == "p" else line[4]
    return kind, selector, obj, subject.split("+", 1)[0]


class PolicyEngine:
    def __init__(
        self,
        lines: Iterable[PolicyLine],
        version: str | None = None,
        *,
        cache_size: int = CACHE_LIMIT,
    ) -> None:
        """`cache_size=0` decides every request afresh (for measuring)."""
        self._cache_size = cache_size
        order: dict[PolicyLine, int] = {}
        for position, line in enumerate(lines):
            if line in order:
                raise PolicyError(f"a line is given twice: {', '.join(line)}")
            order[line] = position
        grouped: dict[BucketKey, list[tuple[int, PolicyLine]]] = {}
        for line, position in order.items():
            grouped.setdefault(bucket_key(line), []).append((position, line))
        self._setup(order, {key: tuple(entries) for key, entries in grouped.items()}, version)

    def _setup(
        self, order: dict[PolicyLine, int], index: dict[BucketKey, Bucket], version: str | None
    ) -> None:
        self._order = order
        self._index = index
        self._next = max(order.values(), default=-1) + 1
        self._version = version
        self._cache: dict[tuple[str, str, str, str], Decision] = {}

    @property
    def version(self) -> str:
        """The label given (the exchange uses `v<number>`), or else the digest of the
        lines — computed on first use, since hashing 100,000 lines takes ~50 ms."""
        if self._version is None:
            self._version = policy_digest(self._order)
        return self._version

    def labelled(self, version: str) -> "PolicyEngine":
        """The same lines under another version label (sharing everything: engines
        are immutable)."""
        engine = PolicyEngine.__new__(PolicyEngine)
        engine._cache_size = self._cache_size
        engine._order, engine._index, engine._next = self._order, self._index, self._next
        engine._version = version
        engine._cache = {}
        return engine

    @classmethod
    def default(cls) -> "PolicyEngine":
        return cls(parse_policy(DEFAULT_POLICY_PATH.read_text(encoding="utf-8")))

    @property
    def lines(self) -> tuple[PolicyLine, ...]:
        """Every line, in the order it was added."""
        return tuple(sorted(self._order, key=self._order.__getitem__))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, line: object) -> bool:
        return line in self._order

    def changed(
        self, added: Sequence[PolicyLine], removed: Sequence[PolicyLine], version: str | None = None
    ) -> "PolicyEngine":
        """A new engine with `added` appended and `removed` taken out; this one is untouched.

        Raises PolicyError for a removed line that is not here or an added one that is."""
        order = dict(self._order)
        touched: set[BucketKey] = set()
        for line in removed:
            if order.pop(line, None) is None:
                raise PolicyError(f"cannot remove a line the policy does not have: {line}")
            touched.add(bucket_key(line))
        position = self._next
        for line in added:
            if line in order:
                raise PolicyError(f"the policy already has this line: {line}")
            order[line] = position
            position += 1
            touched.add(bucket_key(line))
        index = dict(self._index)
        for key in touched:
            kept = [(at, line) for at, line in self._index.get(key, ()) if order.get(line) == at]
            kept += [(order[line], line) for line in added if bucket_key(line) == key]
            if kept:
                index[key] = tuple(sorted(kept))
            else:
                index.pop(key, None)
        engine = PolicyEngine.__new__(PolicyEngine)
        engine._cache_size = self._cache_size
        engine._setup(order, index, version)
        engine._next = max(engine._next, position)
        return engine

    def _candidates(
        self, kind: str, selector: str, sub: str, obj: str
    ) -> list[tuple[int, PolicyLine]]:
        subject_keys = ("*", *attributes(sub))
        found: list[tuple[int, PolicyLine]] = []
        for object_key in ("*", "@own", *attributes(obj)):
            for subject_key in subject_keys:
                bucket = self._index.get((kind, selector, object_key, subject_key))
                if bucket:
                    found.extend(bucket)
        return found

    def _matching(
        self, sub: str, obj: str, action: str, purpose: str
    ) -> list[tuple[int, PolicyLine]]:
        """The p lines the matcher accepts for this request, whatever their view, in order."""
        return sorted(
            (position, line)
            for position, line in self._candidates("p", action, sub, obj)
            if subject_matches(sub, line[1])
            and object_matches(sub, obj, line[2])
            and purpose_matches(obj, purpose, line[4])
        )

    def _treatments(self, sub: str, obj: str, purpose: str) -> dict[str, str]:
        """Per sensitivity, the most protective treatment a matching p2 line grants."""
        shaped: dict[str, str] = {}
        for sensitivity in SENSITIVITIES:
            granted = [
                line[5]
                for _, line in self._candidates("p2", sensitivity, sub, obj)
                if subject_matches(sub, line[1])
                and object_matches(sub, obj, line[2])
                and purpose_matches(obj, purpose, line[3])
            ]
            shaped[sensitivity] = min(granted, key=_TREATMENT_RANK.__getitem__, default=UNSHAPED)
        return shaped

    def decide(
        self, subject: Subject, resource: Resource, action: str, purpose: str = ""
    ) -> Decision:
        """Allowed or denied, with the view the data must be shaped into.

        A request is allowed when some allow line matches and no deny line does.
        Of the views that allowed lines grant, the most protective is chosen, so a
        broad line can never widen what a narrow protective line gives. The
        explaining rule is the one Casbin names: the first matching deny line, or
        the last matching allow line of the chosen view.
        """
        sub, obj = subject.attributes(), resource.attributes()
        key = (sub, obj, action, purpose)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        decision = self._decide(subject, resource, sub, obj, action, purpose)
        if self._cache_size:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key] = decision
        return decision

    def _decide(
        self, subject: Subject, resource: Resource, sub: str, obj: str, action: str, purpose: str
    ) -> Decision:
        matching = self._matching(sub, obj, action, purpose)
        deny = next((line for _, line in matching if line[6] == "deny"), None)
        allows = [line for _, line in matching if line[6] == "allow"]
        if deny is not None or not allows:
            rule = deny[1:] if deny is not None else None
            reason, hint = denial_reason(subject, resource, action, purpose, rule)
            return Decision(False, reason, rule, self.version, NO_VIEW, hint)
        view = min((line[5] for line in allows), key=_VIEW_RANK.__getitem__)
        rule = [line for line in allows if line[5] == view][-1][1:]
        return Decision(
            True,
            f"allowed by {show_rule(rule)}",
            rule,
            self.version,
            view,
            treatments=self._treatments_in(view, sub, obj, purpose),
        )

    def _treatments_in(self, view: str, sub: str, obj: str, purpose: str) -> Mapping[str, str]:
        if view == "raw":
            return dict.fromkeys(SENSITIVITIES, "raw")
        if view == NO_VIEW:
            return {}
        return self._treatments(sub, obj, purpose)


def show_rule(rule: Sequence[str] | None) -> str:
    return "rule [" + ", ".join(rule) + "]" if rule else "no rule"

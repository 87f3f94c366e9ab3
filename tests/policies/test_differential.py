"""`PolicyEngine` against plain Casbin (`CasbinReference`) on random policies.

The engine indexes lines to skip the ones that cannot match; Casbin evaluates the
matcher against every line. Over the same lines in the same order they must give
the same (allowed, view, rule, treatments) for every request. Policies and
requests are drawn from one small vocabulary, so lines do match, with realistic
and adversarial shapes: `+`-joined subject terms no subject can have, object and
purpose patterns that never apply, deny lines of every breadth, p2 lines that
narrow or widen a protected view. Everything is seeded: a failure repeats.
"""

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from policies import Decision, PolicyEngine, PolicyLine, Resource, Subject
from policies.decision import SENSITIVITIES, TREATMENTS_MOST_PROTECTIVE_FIRST
from policies.reference import CasbinReference, Outcome

ORGS = ("pearl-robotaxi", "gz-traffic", "lingnan-maps", "uni-sysu", "city-police", "nobody")
KINDS = ("government", "enterprise", "research")
ODD_KINDS = ("alien", "Government")
ROLES = ("subscriber", "publisher", "auditor", "admin", "steward")
PRINCIPALS = tuple(f"client-{n}" for n in range(6))
PRODUCTS = ("captures", "traffic-flow", "parking", "bus-gps", "lidar-scans", "plates")
TIERS = ("government_only", "open", "regulated", "secret")
SYSTEMS = ("identity", "catalog", "audit", "usage", "policy", "grants")
ACTIONS = ("read", "discover", "publish", "update", "request_access", "manage", "register")
PURPOSES = (
    "law_enforcement",
    "traffic_management",
    "urban_planning",
    "navigation_safety",
    "research",
    "commercial",
)
VIEWS = ("raw", "protected", "-")

Request = tuple[Subject, Resource, str, str]


def _weighted(rng: random.Random, choices: Sequence[tuple[float, Callable[[], str]]]) -> str:
    pick = rng.random() * sum(weight for weight, _ in choices)
    for weight, make in choices:
        pick -= weight
        if pick < 0:
            return make()
    return choices[-1][1]()


# --- policies ----------------------------------------------------------------------------------


def _subject_pattern(rng: random.Random, anyone: float = 4) -> str:
    def term() -> str:
        return _weighted(
            rng,
            [
                (3, lambda: f"kind:{rng.choice(KINDS)}"),
                (4, lambda: f"role:{rng.choice(ROLES)}"),
                (2, lambda: f"org:{rng.choice(ORGS)}"),
                (1, lambda: f"principal:{rng.choice(PRINCIPALS)}"),
            ],
        )

    return _weighted(
        rng,
        [
            (anyone, lambda: "*"),
            (6, term),
            (5, lambda: f"{term()}+{term()}"),
            (1, lambda: f"{term()}+{term()}+{term()}"),
            # No subject has these: two kinds, two organisations, an unknown role, `*` as a
            # term, an empty term, a kind nobody has.
            (0.4, lambda: "kind:government+kind:enterprise"),
            (0.3, lambda: f"org:{ORGS[0]}+org:{ORGS[1]}"),
            (0.3, lambda: "role:superuser"),
            (0.3, lambda: f"*+{term()}"),
            (0.3, lambda: f"{term()}+"),
            (0.3, lambda: "kind:alien+role:subscriber"),
            (0.2, lambda: "subscriber"),
        ],
    )


def _object_pattern(rng: random.Random, anything: float = 4) -> str:
    return _weighted(
        rng,
        [
            (anything, lambda: "*"),
            (3, lambda: "@own"),
            (5, lambda: f"tier:{rng.choice(TIERS)}"),
            (3, lambda: f"product:{rng.choice(PRODUCTS)}"),
            (2, lambda: f"owner:{rng.choice(ORGS)}"),
            (2, lambda: f"system:{rng.choice(SYSTEMS)}"),
            (1, lambda: f"purpose:{rng.choice(PURPOSES)}"),
            (1, lambda: f"granted:{rng.choice(PURPOSES)}"),
            # Never an attribute of an object.
            (0.3, lambda: "@declared"),
            (0.3, lambda: "tier:*"),
            (0.2, lambda: "open"),
        ],
    )


def _purpose_pattern(rng: random.Random, any_purpose: float = 4) -> str:
    return _weighted(
        rng,
        [
            (any_purpose, lambda: "*"),
            (4, lambda: "@declared"),
            (3, lambda: "@granted"),
            (4, lambda: rng.choice(PURPOSES)),
            (0.3, lambda: "@own"),
            (0.2, lambda: "@Granted"),
        ],
    )


def _p_line(rng: random.Random) -> PolicyLine:
    action = rng.choice(("read",) * 5 + ACTIONS + ("delete",))
    view = rng.choice(VIEWS) if action == "read" or rng.random() < 0.3 else "-"
    if rng.random() < 0.15:
        # Deny lines are mostly narrow, as in real policies; now and then a broad one.
        sub, obj = _subject_pattern(rng, anyone=0.5), _object_pattern(rng, anything=1)
        return ("p", sub, obj, action, _purpose_pattern(rng), view, "deny")
    sub, obj = _subject_pattern(rng, anyone=8), _object_pattern(rng, anything=6)
    return ("p", sub, obj, action, _purpose_pattern(rng, any_purpose=6), view, "allow")


def _p2_line(rng: random.Random) -> PolicyLine:
    sub, obj = _subject_pattern(rng, anyone=12), _object_pattern(rng, anything=12)
    pur = _purpose_pattern(rng, any_purpose=12)
    return (
        "p2",
        sub,
        obj,
        pur,
        rng.choice(SENSITIVITIES),
        rng.choice(TREATMENTS_MOST_PROTECTIVE_FIRST),
    )


def random_lines(rng: random.Random, count: int, p2_share: float = 0.15) -> list[PolicyLine]:
    """`count` distinct lines in random order, about `p2_share` of them p2 lines."""
    lines: dict[PolicyLine, None] = {}
    while len(lines) < count:
        lines[_p2_line(rng) if rng.random() < p2_share else _p_line(rng)] = None
    return list(lines)


def fresh_line(rng: random.Random, taken: Iterable[PolicyLine]) -> PolicyLine:
    have = set(taken)
    while True:
        line = _p2_line(rng) if rng.random() < 0.2 else _p_line(rng)
        if line not in have:
            return line


# --- requests ----------------------------------------------------------------------------------


def random_request(rng: random.Random) -> Request:
    org = rng.choice(ORGS)
    kind = rng.choice(ODD_KINDS) if rng.random() < 0.05 else rng.choice(KINDS)
    roles = frozenset(role for role in ROLES if rng.random() < 0.3)
    if rng.random() < 0.6:
        roles |= {"subscriber"}
    who = Subject(rng.choice(PRINCIPALS), org, kind, roles)
    if rng.random() < 0.15:
        action = rng.choice(ACTIONS)
        return who, Resource.system(rng.choice(SYSTEMS)), action, ""
    owner = org if rng.random() < 0.3 else rng.choice(ORGS)
    declared = frozenset(p for p in PURPOSES if rng.random() < 0.45)
    # Mostly grants for declared purposes; now and then one for an undeclared purpose.
    granted = frozenset(p for p in declared if rng.random() < 0.4)
    if rng.random() < 0.1:
        granted |= {rng.choice(PURPOSES)}
    what = Resource(rng.choice(PRODUCTS), rng.choice(TIERS), owner, declared, granted)
    action = rng.choice(("read",) * 8 + ACTIONS)
    roll = rng.random()
    if roll < 0.75 and declared:
        purpose = rng.choice(sorted(declared))
    elif roll < 0.85:
        purpose = rng.choice(PURPOSES)
    elif roll < 0.98:
        purpose = ""
    else:
        purpose = rng.choice(("*", "@declared", "@granted"))
    return who, what, action, purpose


def outcome(decision: Decision) -> Outcome:
    return decision.allowed, decision.view, decision.rule, dict(decision.treatments)


def show(request: Request) -> str:
    who, what, action, purpose = request
    return f"{who.attributes()!r} {what.attributes()!r} {action!r} {purpose!r}"


@dataclass
class Tally:
    """Mismatches, and how the decisions both agreed on came out."""

    mismatches: list[str] = field(default_factory=list)
    allowed: int = 0
    denied: int = 0
    denied_by_rule: int = 0
    views: dict[str, int] = field(default_factory=dict)
    shaped: int = 0  # allowed in a view where some sensitivity is generalized or masked

    def compare(self, request: Request, got: Outcome, expected: Outcome, where: str = "") -> None:
        if got != expected:
            self.mismatches.append(f"{where}{show(request)}\n  engine {got}\n  casbin {expected}")
            return
        allowed, view, rule, treatments = got
        if allowed:
            self.allowed += 1
            self.views[view] = self.views.get(view, 0) + 1
            self.shaped += any(t not in ("raw", "withheld") for t in treatments.values())
        else:
            self.denied += 1
            self.denied_by_rule += rule is not None

    def report(self) -> str:
        shown = "\n".join(self.mismatches[:5])
        return f"{len(self.mismatches)} mismatches, the first ones:\n{shown}"


def compare_all(
    engine: PolicyEngine,
    reference: CasbinReference,
    requests: Iterable[Request],
    tally: Tally,
    where: str = "",
) -> None:
    for request in requests:
        tally.compare(request, outcome(engine.decide(*request)), reference.decide(*request), where)


# --- the tests ---------------------------------------------------------------------------------

# (policy size, requests per policy): many small policies, where a few lines decide and
# ordering and overlaps are dense, and a few large ones, where the index matters.
SHAPES = [(20, 150)] * 10 + [(60, 150)] * 8 + [(150, 120)] * 6 + [(400, 100)] * 3


def test_the_engine_decides_as_casbin_on_random_policies() -> None:
    rng = random.Random(20260517)
    tally = Tally()
    for number, (size, requests) in enumerate(SHAPES):
        lines = random_lines(rng, size, p2_share=rng.choice((0.05, 0.15, 0.3)))
        engine, reference = PolicyEngine(lines), CasbinReference(lines)
        assert engine.lines == tuple(lines)
        batch = [random_request(rng) for _ in range(requests)]
        compare_all(engine, reference, batch, tally, where=f"policy {number} ({size} lines): ")
    assert not tally.mismatches, tally.report()
    total = tally.allowed + tally.denied
    assert total == sum(requests for _, requests in SHAPES)
    # Not vacuous: both answers are common, denials come both from deny lines and from
    # no line, every view is given, and protected views get shaped by p2 lines.
    assert tally.allowed >= total // 5, (tally.allowed, total)
    assert tally.denied >= total // 5, (tally.denied, total)
    assert tally.denied_by_rule >= total // 20, tally.denied_by_rule
    assert tally.denied - tally.denied_by_rule >= total // 20, tally.denied
    assert all(tally.views.get(view, 0) >= total // 50 for view in VIEWS), tally.views
    assert tally.shaped >= total // 50, tally.shaped


def test_line_order_decides_only_which_rule_is_named() -> None:
    """The same lines shuffled: the same answers and views, and still Casbin's rule."""
    rng = random.Random(7)
    tally = Tally()
    for _ in range(6):
        lines = random_lines(rng, 40)
        shuffled = rng.sample(lines, len(lines))
        engine, other = PolicyEngine(lines), PolicyEngine(shuffled)
        reference = CasbinReference(shuffled)
        for request in [random_request(rng) for _ in range(80)]:
            got, again = outcome(engine.decide(*request)), outcome(other.decide(*request))
            assert (got[0], got[1], got[3]) == (again[0], again[1], again[3]), show(request)
            tally.compare(request, again, reference.decide(*request))
    assert not tally.mismatches, tally.report()
    assert tally.allowed and tally.denied


def test_an_edited_engine_decides_as_one_built_from_its_lines() -> None:
    rng = random.Random(31337)
    tally = Tally()
    for round_ in range(4):
        expected = random_lines(rng, rng.choice((30, 80)))
        original = PolicyEngine(expected)
        edited = original
        removed_before: list[PolicyLine] = []
        warm = [random_request(rng) for _ in range(10)]
        for _ in range(25):
            # Each engine has answers cached before it is edited; none may leak into the next.
            for request in warm:
                edited.decide(*request)
            added = [fresh_line(rng, expected) for _ in range(rng.choice((0, 1, 1, 3)))]
            added = list(dict.fromkeys(added))
            removed = rng.sample(expected, min(len(expected), rng.choice((0, 1, 1, 2))))
            # Now and then a line removed by an earlier edit comes back, at the end.
            back = [line for line in removed_before if line not in expected and line not in added]
            if back and rng.random() < 0.3:
                added.append(rng.choice(back))
            edited = edited.changed(added, removed)
            expected = [line for line in expected if line not in removed] + added
            removed_before += removed
            assert edited.lines == tuple(expected)
            assert len(edited) == len(expected)
        assert original.lines != edited.lines
        requests = [*warm, *(random_request(rng) for _ in range(100))]
        fresh, reference = PolicyEngine(edited.lines), CasbinReference(edited.lines)
        compare_all(edited, reference, requests, tally, where=f"edited {round_}: ")
        assert fresh.version == edited.version
        for request in requests:
            assert edited.decide(*request) == fresh.decide(*request), show(request)
        # The engine edits were made from is untouched.
        compare_all(original, CasbinReference(original.lines), requests[:40], tally, "original: ")
    assert not tally.mismatches, tally.report()
    assert tally.allowed >= 50 and tally.denied >= 50, (tally.allowed, tally.denied)


def test_a_line_removed_and_added_in_one_edit_moves_to_the_end() -> None:
    """Removed and added back in one edit, a line goes to the end, as `lines` says; the
    first matching deny line in that order is the one Casbin names."""
    first = ("p", "*", "*", "read", "*", "-", "deny")
    second = ("p", "kind:government", "*", "read", "*", "-", "deny")
    allow = ("p", "*", "*", "read", "*", "raw", "allow")
    moved = PolicyEngine([first, second, allow]).changed([first], [first])
    assert moved.lines == (second, allow, first)
    request = (
        Subject("client-0", "city-police", "government", frozenset({"subscriber"})),
        Resource("captures", "open", "pearl-robotaxi", frozenset({"research"})),
        "read",
        "research",
    )
    expected = CasbinReference(moved.lines).decide(*request)
    assert expected[2] == second[1:]
    assert outcome(PolicyEngine(moved.lines).decide(*request)) == expected
    assert outcome(moved.decide(*request)) == expected


def test_cached_and_uncached_engines_decide_alike() -> None:
    rng = random.Random(4242)
    for _ in range(3):
        lines = random_lines(rng, 120)
        cached, small = PolicyEngine(lines), PolicyEngine(lines, cache_size=7)
        uncached = PolicyEngine(lines, cache_size=0)
        pool = [random_request(rng) for _ in range(150)]
        first = {show(request): cached.decide(*request) for request in pool}
        allowed = 0
        for request in rng.choices(pool, k=1500):
            answer = uncached.decide(*request)
            assert cached.decide(*request) == answer == first[show(request)], show(request)
            assert small.decide(*request) == answer, show(request)
            allowed += answer.allowed
        assert 150 <= allowed <= 1350, allowed


def test_the_default_policy_decides_as_casbin() -> None:
    engine = PolicyEngine.default()
    reference = CasbinReference(engine.lines)
    rng = random.Random(1120)
    tally = Tally()
    compare_all(engine, reference, [random_request(rng) for _ in range(1500)], tally)
    assert not tally.mismatches, tally.report()
    assert tally.allowed >= 150 and tally.denied >= 150, (tally.allowed, tally.denied)
    assert set(tally.views) == set(VIEWS), tally.views
    assert tally.denied_by_rule >= 20, tally.denied_by_rule

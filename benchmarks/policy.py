"""Policy decisions at 100, 10,000 and 100,000 lines, against plain Casbin.

The policy is generated (seeded): the default policy's lines first, a few hundred
generic lines (kinds, roles and tiers, organisation-wide bans, the exchange's own
resources), p2 lines, and for the rest many products, each with lines for its
owner, for partner organisations (allows in some view, for some purposes), for
organisations it bars, for subscribers holding a grant, and now and then a p2
line for a partner. The requests are a realistic mix over those products and
organisations: mostly reads for a declared purpose, some discovery, the owner's
own actions, and the exchange's resources.

- raw Casbin: `CasbinReference(lines).enforcer.enforce(sub, obj, act, pur, "*")`,
  the baseline (time-boxed: at 100,000 lines it manages a few per second)
- `PolicyEngine(lines, cache_size=0).decide`: every request decided afresh
- `PolicyEngine(lines).decide` on repeated requests, after warming its cache
- building each from the lines, and a one-line edit through `changed`
"""

import random
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from policies import PolicyEngine, PolicyLine, Resource, Subject, parse_policy
from policies.decision import SENSITIVITIES, TREATMENTS_MOST_PROTECTIVE_FIRST
from policies.engine import DEFAULT_POLICY_PATH
from policies.reference import CasbinReference

SIZES = (100, 10_000, 100_000)
SEED = 20260517
TIME_BOX = 3.0  # seconds per throughput measurement
MIN_CALLS = 3
REQUESTS = 5_000  # distinct requests in the uncached mix
REPEATED = 1_000  # distinct requests the cached engine sees over and over
EDITS = 9  # one-line edits timed; the median is reported
GENERIC = 300  # at most, with the default policy's lines
P2_GENERIC = 200  # at most

KINDS = ("government", "enterprise", "research")
TIERS = ("government_only", "open", "regulated")
EXTRA_TIERS = tuple(f"pilot-{n}" for n in range(20))
ROLES = ("subscriber", "publisher", "auditor", "admin", "steward")
SYSTEMS = ("identity", "catalog", "audit", "usage", "policy", "grants")
SYSTEM_ACTIONS = ("manage", "register", "read")
PURPOSES = (
    "law_enforcement",
    "traffic_management",
    "urban_planning",
    "navigation_safety",
    "research",
    "commercial",
    "insurance",
    "public_transport",
)
VIEWS = ("raw", "protected")

Request = tuple[Subject, Resource, str, str]
T = TypeVar("T")


@dataclass(frozen=True)
class Product:
    name: str
    tier: str
    owner: str
    purposes: tuple[str, ...]
    partners: tuple[str, ...]
    barred: tuple[str, ...]
    holders: str  # the kind of organisation that may read it with a grant


@dataclass
class Policy:
    lines: list[PolicyLine]
    products: list[Product]
    orgs: list[str]
    kinds: dict[str, str]


def _organizations(count: int, rng: random.Random) -> tuple[list[str], dict[str, str]]:
    orgs = [f"org-{n:05d}" for n in range(max(20, count // 50))]
    return orgs, {org: rng.choices(KINDS, weights=(2, 5, 2))[0] for org in orgs}


def _generic(rng: random.Random, orgs: list[str]) -> Iterator[PolicyLine]:
    """The default policy's p lines, then endless kind/role/tier/system lines."""
    yield from (line for line in _default_lines() if line[0] == "p")
    while True:
        kind, role = rng.choice(KINDS), rng.choice(ROLES)
        tier = rng.choice(TIERS + EXTRA_TIERS)
        purpose = rng.choice((*PURPOSES, "@declared", "@granted"))
        view = rng.choice(VIEWS)
        system, action = f"system:{rng.choice(SYSTEMS)}", rng.choice(SYSTEM_ACTIONS)
        barred, asks = f"org:{rng.choice(orgs)}", f"kind:{kind}+role:{role}"
        shapes: tuple[PolicyLine, ...] = (
            ("p", f"kind:{kind}+role:subscriber", f"tier:{tier}", "read", purpose, view, "allow"),
            ("p", f"role:{role}", system, action, "*", "-", "allow"),
            ("p", barred, f"tier:{tier}", "read", "*", "-", "deny"),
            ("p", f"kind:{kind}", f"tier:{tier}", "discover", "*", "-", "allow"),
            ("p", asks, f"tier:{tier}", "request_access", "@declared", "-", "allow"),
        )
        yield rng.choice(shapes)


def _p2(rng: random.Random) -> Iterator[PolicyLine]:
    """The default policy's p2 lines, then endless per kind, tier and purpose ones."""
    yield from (line for line in _default_lines() if line[0] == "p2")
    while True:
        subject = rng.choice(("*", *(f"kind:{kind}" for kind in KINDS)))
        obj = f"tier:{rng.choice(TIERS + EXTRA_TIERS)}"
        purpose = rng.choice((*PURPOSES, "*", "@granted"))
        treatment = rng.choice(TREATMENTS_MOST_PROTECTIVE_FIRST)
        yield ("p2", subject, obj, purpose, rng.choice(SENSITIVITIES), treatment)


def _products(rng: random.Random, orgs: list[str], made: list[Product]) -> Iterator[PolicyLine]:
    """Endless products, each with its block of lines; each product is put in `made`."""
    number = 0
    while True:
        purposes = tuple(rng.sample(PURPOSES, rng.randint(2, 4)))
        others = rng.sample(orgs, 6)
        product = Product(
            name=f"product-{number:06d}",
            tier=rng.choices(TIERS + EXTRA_TIERS, weights=(2, 6, 4, *(0.1,) * 20))[0],
            owner=others[0],
            purposes=purposes,
            partners=tuple(others[1 : rng.randint(2, 5)]),
            barred=tuple(others[5:]),
            holders=rng.choice(KINDS),
        )
        made.append(product)
        number += 1
        target = f"product:{product.name}"
        yield ("p", f"org:{product.owner}+role:publisher", target, "update", "*", "-", "allow")
        for partner in product.partners:
            purpose = rng.choice((*purposes, "@declared"))
            view = rng.choice(VIEWS)
            yield ("p", f"org:{partner}+role:subscriber", target, "read", purpose, view, "allow")
        for barred in product.barred:
            yield ("p", f"org:{barred}", target, "read", "*", "-", "deny")
        holders = f"kind:{product.holders}+role:subscriber"
        yield ("p", holders, target, "read", "@granted", "protected", "allow")
        if rng.random() < 0.5:
            yield ("p", "*", target, "discover", "*", "-", "allow")
        if rng.random() < 0.3:
            sensitivity = rng.choice(SENSITIVITIES)
            partner = rng.choice(product.partners)
            yield ("p2", f"org:{partner}", target, "*", sensitivity, "masked")


def _default_lines() -> list[PolicyLine]:
    return parse_policy(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))


def _take(source: Iterator[PolicyLine], count: int, into: dict[PolicyLine, None]) -> None:
    """Adds the next `count` lines of `source` not already in `into`."""
    wanted = len(into) + count
    while len(into) < wanted:
        into[next(source)] = None


def generate(count: int, seed: int = SEED) -> Policy:
    """A realistic policy of exactly `count` distinct lines."""
    rng = random.Random(seed)
    orgs, kinds = _organizations(count, rng)
    generic, p2 = min(GENERIC, count // 3), min(P2_GENERIC, count // 20)
    lines: dict[PolicyLine, None] = {}
    products: list[Product] = []
    _take(_generic(rng, orgs), generic, lines)
    _take(_p2(rng), p2, lines)
    _take(_products(rng, orgs, products), count - len(lines), lines)
    assert len(lines) == count
    return Policy(list(lines), products, orgs, kinds)


def requests(policy: Policy, count: int, seed: int = SEED) -> list[Request]:
    """A realistic mix: reads for a declared purpose (by partners, barred organisations,
    grant holders and strangers), discovery, the owner's own actions, the exchange."""
    rng = random.Random(seed + count)
    mix: list[Request] = []
    by_kind = {kind: [org for org in policy.orgs if policy.kinds[org] == kind] for kind in KINDS}
    while len(mix) < count:
        product = rng.choice(policy.products)
        roll = rng.random()
        if roll < 0.35:
            org = rng.choice(product.partners)
        elif roll < 0.4:
            org = rng.choice(product.barred)
        elif roll < 0.5:
            org = product.owner
        elif roll < 0.65:
            org = rng.choice(by_kind[product.holders] or policy.orgs)
        else:
            org = rng.choice(policy.orgs)
        roles = {"subscriber"} if rng.random() < 0.85 else set()
        roles |= {role for role in ROLES if rng.random() < 0.1}
        if org == product.owner:
            roles.add("publisher")
        who = Subject(f"client-{org}-{rng.randrange(3)}", org, policy.kinds[org], frozenset(roles))
        purpose = rng.choice(product.purposes) if rng.random() < 0.85 else rng.choice(PURPOSES)
        chance = 0.8 if policy.kinds[org] == product.holders else 0.1
        granted = frozenset(p for p in product.purposes if rng.random() < chance)
        what = Resource(
            product.name, product.tier, product.owner, frozenset(product.purposes), granted
        )
        kind = rng.random()
        if kind < 0.75:
            mix.append((who, what, "read", purpose))
        elif kind < 0.85:
            mix.append((who, what, "discover", ""))
        elif kind < 0.95:
            mix.append((who, what, rng.choice(("update", "publish")), ""))
        else:
            system = Resource.system(rng.choice(SYSTEMS))
            mix.append((who, system, rng.choice(SYSTEM_ACTIONS), ""))
    return mix


def _throughput(call: Callable[[T], object], mix: Sequence[T]) -> tuple[float, int]:
    """(calls/s, calls) cycling through `mix` for about TIME_BOX seconds, at least MIN_CALLS.

    The clock is read about every 10 ms, not after every call."""
    calls, step = 0, 1
    started = time.perf_counter()
    while True:
        for _ in range(step):
            call(mix[calls % len(mix)])
            calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= TIME_BOX and calls >= MIN_CALLS:
            return calls / elapsed, calls
        step = max(1, int(calls / elapsed / 100)) if elapsed > 0 else step * 2


def _timed(build: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    built = build()
    return time.perf_counter() - started, built


def _median_ms(edit: Callable[[int], object]) -> float:
    timings = []
    for attempt in range(EDITS):
        started = time.perf_counter()
        edit(attempt)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def _say(message: str) -> None:
    print(message, flush=True)


def measure(count: int) -> list[tuple[str, float, str]]:
    policy = generate(count)
    mix = requests(policy, REQUESTS)
    at = f"{count:,} lines:"

    _say(f"{at} loading Casbin and building the engine …")
    casbin_seconds, reference = _timed(lambda: CasbinReference(policy.lines))
    engine_seconds, uncached = _timed(lambda: PolicyEngine(policy.lines, cache_size=0))

    _say(f"{at} raw Casbin enforce for {TIME_BOX:.0f} s …")
    enforcer = reference.enforcer
    flat = [(s.attributes(), r.attributes(), act, pur) for s, r, act, pur in mix]
    answers: list[bool] = []
    raw, raw_calls = _throughput(
        lambda request: answers.append(enforcer.enforce(*request, "*")), flat
    )
    # The engine must give Casbin's answers, or its speed means nothing.
    for request, answer in zip(mix, answers, strict=False):
        assert uncached.decide(*request).allowed == answer, request

    _say(f"{at} PolicyEngine uncached and cached …")
    fast, fast_calls = _throughput(lambda request: uncached.decide(*request), mix)
    share = sum(uncached.decide(*request).allowed for request in mix) / len(mix)
    cached = PolicyEngine(policy.lines)
    repeated = mix[:REPEATED]
    for request in repeated:
        cached.decide(*request)
    hits, hit_calls = _throughput(lambda request: cached.decide(*request), repeated)

    _say(f"{at} one-line edits …")
    rng = random.Random(SEED)
    existing = rng.sample(policy.lines, EDITS)
    new = [
        ("p", f"org:{rng.choice(policy.orgs)}", f"product:bench-{n}", "read", "*", "raw", "allow")
        for n in range(EDITS)
    ]
    added = _median_ms(lambda n: cached.changed([new[n]], []))
    removed = _median_ms(lambda n: cached.changed([], [existing[n]]))
    added_named = _median_ms(lambda n: cached.changed([new[n]], [], version="bench"))
    removed_named = _median_ms(lambda n: cached.changed([], [existing[n]], version="bench"))

    large = count == max(SIZES)
    target = " (target ≥ 2,000/s)" if large else ""
    edit_target = " (target ≤ 50 ms)" if large else ""
    return [
        (f"{at} raw Casbin enforce (decisions/s, baseline)", raw, f"{raw_calls:,} calls"),
        (
            f"{at} PolicyEngine uncached (decisions/s)",
            fast,
            f"{fast / raw:,.0f}x raw{target}; {fast_calls:,} calls, {share:.0%} allowed",
        ),
        (
            f"{at} PolicyEngine cached, repeated (decisions/s)",
            hits,
            f"{hits / fast:,.1f}x uncached (target ≥ 100,000/s); {hit_calls:,} calls",
        ),
        (f"{at} Casbin load, CasbinReference(lines) (ms)", casbin_seconds * 1000, "baseline"),
        (
            f"{at} build PolicyEngine(lines) (ms)",
            engine_seconds * 1000,
            f"{engine_seconds / casbin_seconds:.2f}x Casbin load",
        ),
        (f"{at} changed([one new line], []) (ms, median)", added, f"of {EDITS}{edit_target}"),
        (f"{at} changed([], [one line]) (ms, median)", removed, f"of {EDITS}{edit_target}"),
        (
            f"{at} both edits, version given (ms, median)",
            max(added_named, removed_named),
            f"add {added_named:.3f}, remove {removed_named:.3f}: no policy digest computed",
        ),
    ]


def run() -> list[tuple[str, float, str]]:
    rows: list[tuple[str, float, str]] = []
    for count in SIZES:
        rows += measure(count)
    return rows

"""`PolicyEngine.decide` over the default policy, and the engine's own rules.

Pure: no database, no app. The tables below are the intended policy written out
cell by cell (policies/default.csv is the source); a differential check compares
the engine with a plain Casbin enforcer loaded from the same model and lines.
"""

import random

import casbin
import pytest

from policies import Decision, PolicyEngine, PolicyError, Resource, Subject, parse_policy
from policies.engine import DEFAULT_POLICY_PATH, MODEL_PATH
from policies.terms import object_matches, purpose_matches, subject_matches

ENGINE = PolicyEngine.default()

OWNER = "pearl-robotaxi"
OTHER_ORG = "some-other-org"
DECLARED = frozenset({"law_enforcement", "navigation_safety", "research", "traffic_management"})
DECLARED_HINT = "state one of the product's declared purposes"


def product(tier: str, owner: str = OWNER, purposes: frozenset[str] = DECLARED) -> Resource:
    return Resource(
        name=f"{tier.replace('_', '-')}-captures", tier=tier, owner=owner, purposes=purposes
    )


def subject(kind: str, *roles: str, org: str = OTHER_ORG) -> Subject:
    return Subject(principal=f"client-{kind}", organization=org, kind=kind, roles=frozenset(roles))


def outcome(decision: Decision) -> str | None:
    """The view if allowed, None if denied; and the decision's own invariants."""
    assert decision.policy_version == ENGINE.version
    if not decision.allowed:
        assert decision.view == "-", decision
        return None
    assert decision.rule is not None, decision
    assert decision.rule[-1] == "allow", decision
    assert decision.rule[-2] == decision.view, decision
    assert decision.reason == "allowed by rule [" + ", ".join(decision.rule) + "]"
    assert decision.hint is None
    return decision.view


# --- reads: tier x kind x role x purpose -------------------------------------------------------

R, P, X = "raw", "protected", None
PURPOSES = ("law_enforcement", "traffic_management", "navigation_safety", "research", "commercial")
# "publisher" here is a publisher of another organisation: it does not own the product.
READS: dict[tuple[str, str, str], tuple[str | None, ...]] = {
    # tier               kind          role           LE TM NS RE commercial
    ("government_only", "government", "subscriber"): (R, R, R, R, X),
    ("government_only", "government", "publisher"): (X, X, X, X, X),
    ("government_only", "government", "auditor"): (X, X, X, X, X),
    ("government_only", "enterprise", "subscriber"): (X, X, X, X, X),
    ("government_only", "enterprise", "publisher"): (X, X, X, X, X),
    ("government_only", "enterprise", "auditor"): (X, X, X, X, X),
    ("government_only", "research", "subscriber"): (X, X, X, X, X),
    ("government_only", "research", "publisher"): (X, X, X, X, X),
    ("government_only", "research", "auditor"): (X, X, X, X, X),
    ("open", "government", "subscriber"): (R, P, X, P, X),
    ("open", "government", "publisher"): (X, X, X, X, X),
    ("open", "government", "auditor"): (X, X, X, X, X),
    ("open", "enterprise", "subscriber"): (X, P, P, P, X),
    ("open", "enterprise", "publisher"): (X, X, X, X, X),
    ("open", "enterprise", "auditor"): (X, X, X, X, X),
    ("open", "research", "subscriber"): (X, P, P, P, X),
    ("open", "research", "publisher"): (X, X, X, X, X),
    ("open", "research", "auditor"): (X, X, X, X, X),
    ("regulated", "government", "subscriber"): (R, P, X, X, X),
    ("regulated", "government", "publisher"): (X, X, X, X, X),
    ("regulated", "government", "auditor"): (X, X, X, X, X),
    ("regulated", "enterprise", "subscriber"): (X, X, X, X, X),
    ("regulated", "enterprise", "publisher"): (X, X, X, X, X),
    ("regulated", "enterprise", "auditor"): (X, X, X, X, X),
    ("regulated", "research", "subscriber"): (X, X, X, X, X),
    ("regulated", "research", "publisher"): (X, X, X, X, X),
    ("regulated", "research", "auditor"): (X, X, X, X, X),
}
READ_CASES = [
    pytest.param(tier, kind, role, purpose, view, id=f"{tier}-{kind}-{role}-{purpose}")
    for (tier, kind, role), row in READS.items()
    for purpose, view in zip(PURPOSES, row, strict=True)
]


@pytest.mark.parametrize(("tier", "kind", "role", "purpose", "view"), READ_CASES)
def test_read(tier: str, kind: str, role: str, purpose: str, view: str | None) -> None:
    decision = ENGINE.decide(subject(kind, role), product(tier), "read", purpose)
    assert outcome(decision) == view, decision


def _deny_line(kind: str, obj: str, purpose: str) -> tuple[str, ...]:
    return (f"kind:{kind}", obj, "read", purpose, "-", "deny")


@pytest.mark.parametrize("purpose", [*PURPOSES, ""])
@pytest.mark.parametrize("role", ["subscriber", "publisher", "auditor"])
@pytest.mark.parametrize("kind", ["enterprise", "research"])
def test_government_only_is_denied_to_others_by_the_explicit_rule(
    kind: str, role: str, purpose: str
) -> None:
    decision = ENGINE.decide(subject(kind, role), product("government_only"), "read", purpose)
    assert not decision.allowed
    assert decision.rule == _deny_line(kind, "tier:government_only", "*")
    assert decision.reason == "denied by rule [" + ", ".join(decision.rule) + "]"


@pytest.mark.parametrize("tier", ["open", "regulated"])
@pytest.mark.parametrize("kind", ["enterprise", "research"])
def test_law_enforcement_is_denied_to_non_government_by_the_explicit_rule(
    tier: str, kind: str
) -> None:
    decision = ENGINE.decide(subject(kind, "subscriber"), product(tier), "read", "law_enforcement")
    assert not decision.allowed
    assert decision.rule == _deny_line(kind, "*", "law_enforcement")
    assert "denied by rule" in decision.reason


@pytest.mark.parametrize("purpose", ["traffic_management", "navigation_safety", "research"])
@pytest.mark.parametrize("kind", ["enterprise", "research"])
def test_regulated_needs_a_grant_for_non_government(kind: str, purpose: str) -> None:
    decision = ENGINE.decide(subject(kind, "subscriber"), product("regulated"), "read", purpose)
    assert not decision.allowed
    assert decision.rule is None
    assert "regulated" in decision.reason
    assert decision.hint is not None
    assert "request access" in decision.hint
    assert purpose in decision.hint


# Where an explicit deny line applies, it is the reason; every other undeclared
# purpose is refused with the hint to state a declared one.
EXPLICITLY_DENIED = {("government_only", "enterprise"), ("government_only", "research")}


@pytest.mark.parametrize("purpose", ["commercial", "urban_planning", ""])
@pytest.mark.parametrize("role", ["subscriber", "publisher", "auditor", "owner"])
@pytest.mark.parametrize("kind", ["government", "enterprise", "research"])
@pytest.mark.parametrize("tier", ["government_only", "open", "regulated"])
def test_an_undeclared_purpose_is_always_denied(
    tier: str, kind: str, role: str, purpose: str
) -> None:
    who = subject(kind, "publisher", org=OWNER) if role == "owner" else subject(kind, role)
    decision = ENGINE.decide(who, product(tier), "read", purpose)
    assert outcome(decision) is None
    if (tier, kind) in EXPLICITLY_DENIED:
        assert decision.rule is not None
        assert decision.rule[-1] == "deny"
    else:
        assert decision.hint == DECLARED_HINT, decision
        assert repr(purpose) in decision.reason
        assert "law_enforcement, navigation_safety, research, traffic_management" in (
            decision.reason
        )


# --- owners and publishing ---------------------------------------------------------------------

OWNERS = [
    # kind, tier, action, purpose, expected view (None: denied)
    ("government", "government_only", "read", "law_enforcement", R),
    ("government", "government_only", "read", "traffic_management", R),
    ("government", "government_only", "read", "navigation_safety", R),
    ("government", "government_only", "read", "research", R),
    ("government", "open", "read", "navigation_safety", R),
    ("government", "regulated", "read", "law_enforcement", R),
    ("enterprise", "open", "read", "traffic_management", R),
    ("enterprise", "open", "read", "navigation_safety", R),
    ("enterprise", "regulated", "read", "research", R),
    ("research", "open", "read", "research", R),
    ("research", "regulated", "read", "navigation_safety", R),
    # Law enforcement is government's alone: the deny line overrides ownership too.
    ("enterprise", "open", "read", "law_enforcement", X),
    ("research", "regulated", "read", "law_enforcement", X),
    ("government", "open", "read", "commercial", X),
    ("government", "government_only", "publish", "", "-"),
    ("government", "government_only", "update", "", "-"),
    ("enterprise", "open", "publish", "", "-"),
    ("enterprise", "regulated", "update", "", "-"),
    ("research", "open", "publish", "", "-"),
    ("research", "regulated", "update", "", "-"),
]


@pytest.mark.parametrize(
    ("kind", "tier", "action", "purpose", "view"),
    [pytest.param(*row, id="-".join(v for v in row[:4] if v)) for row in OWNERS],
)
def test_owner(kind: str, tier: str, action: str, purpose: str, view: str | None) -> None:
    owner = subject(kind, "publisher", org=OWNER)
    decision = ENGINE.decide(owner, product(tier), action, purpose)
    assert outcome(decision) == view, decision


@pytest.mark.parametrize("action", ["publish", "update"])
@pytest.mark.parametrize(
    ("kind", "roles", "org"),
    [
        ("government", ("publisher",), OTHER_ORG),
        ("enterprise", ("publisher",), OTHER_ORG),
        ("research", ("publisher",), OTHER_ORG),
        ("enterprise", ("publisher", "subscriber"), OTHER_ORG),
        # The owner's organisation, but without the publisher role.
        ("enterprise", ("subscriber",), OWNER),
        ("government", ("admin",), OWNER),
    ],
)
@pytest.mark.parametrize("tier", ["government_only", "open", "regulated"])
def test_only_an_owning_publisher_may_publish_or_update(
    tier: str, kind: str, roles: tuple[str, ...], org: str, action: str
) -> None:
    decision = ENGINE.decide(subject(kind, *roles, org=org), product(tier), action)
    assert outcome(decision) is None, decision


# --- the exchange itself -----------------------------------------------------------------------

SYSTEM = [("identity", "manage"), ("audit", "read"), ("catalog", "register")]
ALLOWED_SYSTEM = {
    "admin": ("identity", "manage"),
    "auditor": ("audit", "read"),
    "publisher": ("catalog", "register"),
}


@pytest.mark.parametrize(("name", "action"), SYSTEM)
@pytest.mark.parametrize("role", ["admin", "auditor", "publisher", "subscriber", "steward"])
def test_system_resources(role: str, name: str, action: str) -> None:
    decision = ENGINE.decide(subject("government", role), Resource.system(name), action)
    expected = "-" if ALLOWED_SYSTEM.get(role) == (name, action) else None
    assert outcome(decision) == expected, decision


@pytest.mark.parametrize(
    ("role", "name", "action"),
    [
        ("admin", "identity", "read"),
        ("admin", "audit", "read"),
        ("auditor", "audit", "manage"),
        ("auditor", "identity", "manage"),
        ("publisher", "catalog", "manage"),
        ("publisher", "identity", "register"),
    ],
)
def test_system_roles_do_not_stretch(role: str, name: str, action: str) -> None:
    decision = ENGINE.decide(subject("government", role), Resource.system(name), action)
    assert outcome(decision) is None, decision


# --- discover ----------------------------------------------------------------------------------

DISCOVER = {
    # tier: (government, enterprise, research)
    "government_only": (True, False, False),
    "open": (True, True, True),
    "regulated": (True, True, True),
}


@pytest.mark.parametrize("role", ["subscriber", "auditor"])
@pytest.mark.parametrize(
    ("tier", "kind", "visible"),
    [
        (tier, kind, visible)
        for tier, row in DISCOVER.items()
        for kind, visible in zip(("government", "enterprise", "research"), row, strict=True)
    ],
)
def test_discover(tier: str, kind: str, visible: bool, role: str) -> None:
    decision = ENGINE.decide(subject(kind, role), product(tier), "discover")
    assert outcome(decision) == ("-" if visible else None), decision


@pytest.mark.parametrize("kind", ["government", "enterprise", "research"])
def test_an_owner_always_discovers_its_own_product(kind: str) -> None:
    owner = subject(kind, "publisher", org=OWNER)
    assert ENGINE.decide(owner, product("government_only"), "discover").allowed


# --- the engine's rules ------------------------------------------------------------------------

ALLOW_RESEARCH = "p, kind:enterprise, tier:open, read, research, protected, allow"
DENY_SECRET = "p, kind:enterprise, product:secret, read, *, -, deny"


@pytest.mark.parametrize(
    "text",
    [f"{ALLOW_RESEARCH}\n{DENY_SECRET}\n", f"{DENY_SECRET}\n{ALLOW_RESEARCH}\n"],
    ids=["allow-first", "deny-first"],
)
def test_deny_overrides_allow(text: str) -> None:
    engine = PolicyEngine(parse_policy(text))
    mapco = subject("enterprise", "subscriber")
    secret = Resource("secret", "open", OWNER, frozenset({"research"}))
    decision = engine.decide(mapco, secret, "read", "research")
    assert not decision.allowed
    assert decision.view == "-"
    assert decision.rule == ("kind:enterprise", "product:secret", "read", "*", "-", "deny")
    assert decision.reason == "denied by rule [kind:enterprise, product:secret, read, *, -, deny]"
    other = Resource("other", "open", OWNER, frozenset({"research"}))
    assert engine.decide(mapco, other, "read", "research").view == "protected"


RAW_FOR_GOVERNMENT = "p, kind:government, tier:open, read, research, raw, allow"
PROTECTED_FOR_ALL = "p, *, tier:open, read, @declared, protected, allow"


@pytest.mark.parametrize(
    "text",
    [
        f"{RAW_FOR_GOVERNMENT}\n{PROTECTED_FOR_ALL}\n",
        f"{PROTECTED_FOR_ALL}\n{RAW_FOR_GOVERNMENT}\n",
    ],
    ids=["raw-first", "protected-first"],
)
def test_the_most_protective_view_wins(text: str) -> None:
    engine = PolicyEngine(parse_policy(text))
    police = subject("government", "subscriber")
    decision = engine.decide(police, product("open"), "read", "research")
    assert (decision.allowed, decision.view) == (True, "protected")
    assert decision.rule == ("*", "tier:open", "read", "@declared", "protected", "allow")
    only_raw = PolicyEngine(parse_policy(RAW_FOR_GOVERNMENT))
    assert only_raw.decide(police, product("open"), "read", "research").view == "raw"


@pytest.mark.parametrize("action", ["delete", "READ", "write", "", "read "])
def test_an_unknown_action_is_denied(action: str) -> None:
    police = subject("government", "subscriber", "publisher", "admin", "auditor", org=OWNER)
    decision = ENGINE.decide(police, product("open"), action, "law_enforcement")
    assert outcome(decision) is None, decision


@pytest.mark.parametrize("tier", ["government_only", "open", "regulated"])
@pytest.mark.parametrize("kind", ["alien", "Government", "", "government+role:subscriber"])
def test_an_unknown_subject_kind_is_denied(kind: str, tier: str) -> None:
    for purpose in PURPOSES:
        decision = ENGINE.decide(subject(kind, "subscriber"), product(tier), "read", purpose)
        assert outcome(decision) is None, (purpose, decision)


def test_parse_policy_skips_comments_and_blank_lines() -> None:
    text = "# a comment\n\n  p , *, tier:open ,discover, *, -, allow  \n   # indented comment\n"
    assert parse_policy(text) == [("p", "*", "tier:open", "discover", "*", "-", "allow")]


def test_the_default_policy_has_one_line_per_p_line() -> None:
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    p_lines = [line for line in text.splitlines() if line.startswith(("p,", "p2,"))]
    assert len(ENGINE.lines) == len(p_lines) > 0


GOOD = "p, *, tier:open, discover, *, -, allow"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("p, *, tier:open, discover, *, allow", "expected 'p' and 6 values"),
        ("p, *, tier:open, discover, *, -, allow, extra", "expected 'p' and 6 values"),
        ("g, *, tier:open, discover, *, -, allow", "expected 'p' and 6 values"),
        ("p, *, tier:open, discover, *, -, Deny", "effect must be allow or deny"),
        ("p, *, tier:open, discover, *, -, ALLOW", "effect must be allow or deny"),
        ("p, *, tier:open, discover, *, -, permit", "effect must be allow or deny"),
        ("p, keyMatch(r.sub), tier:open, discover, *, -, allow", "forbidden character"),
        ("p, *, tier:open), discover, *, -, allow", "forbidden character"),
        ('p, "*", tier:open, discover, *, -, allow', "forbidden character"),
        ("p, *, tier:open, discover, '*', -, allow", "forbidden character"),
        ("p, , tier:open, discover, *, -, allow", "empty value"),
        ("p, kind:enterprise role:subscriber, tier:open, read, *, -, deny", "space"),
    ],
)
def test_parse_policy_rejects_a_bad_line_naming_it(bad: str, message: str) -> None:
    text = f"# header\n\n{GOOD}\n{bad}\n{GOOD}\n"
    with pytest.raises(PolicyError, match=r"^line 4: ") as raised:
        parse_policy(text)
    assert message in str(raised.value)


def test_every_decision_carries_the_policy_version() -> None:
    lines = parse_policy(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    same = PolicyEngine(list(lines))
    fewer = PolicyEngine(lines[:-1])
    assert same.version == ENGINE.version == PolicyEngine.default().version
    assert ENGINE.version.startswith("sha256:")
    assert fewer.version != ENGINE.version
    last_p = max(i for i, line in enumerate(lines) if line[0] == "p")
    edited = (*lines[last_p][:-2], "raw", "allow")
    changed = PolicyEngine([*lines[:last_p], edited, *lines[last_p + 1 :]])
    assert changed.version not in (ENGINE.version, fewer.version)
    police = subject("government", "subscriber")
    mapco = subject("enterprise", "subscriber")
    for engine in (ENGINE, same, fewer, changed):
        allowed = engine.decide(police, product("open"), "read", "law_enforcement")
        denied = engine.decide(mapco, product("government_only"), "read", "research")
        assert allowed.allowed
        assert not denied.allowed
        assert allowed.policy_version == denied.policy_version == engine.version


# --- the engine against plain Casbin -----------------------------------------------------------

ORGS = (OWNER, "gz-12345", "lingnan-maps")
KINDS = ("government", "enterprise", "research", "alien")
ROLES = ("subscriber", "publisher", "auditor", "admin", "steward")
TIERS = ("government_only", "open", "regulated", "secret")
ALL_PURPOSES = (
    "law_enforcement",
    "traffic_management",
    "urban_planning",
    "navigation_safety",
    "research",
    "commercial",
)
ACTIONS = ("read", "read", "read", "discover", "publish", "update", "register", "manage", "delete")
SYSTEMS = ("identity", "audit", "catalog", "records")


def _random_request(rng: random.Random) -> tuple[Subject, Resource, str, str]:
    org = rng.choice(ORGS)
    roles = frozenset(r for r in ROLES if rng.random() < 0.35) or frozenset({"subscriber"})
    who = Subject(f"client-{rng.randrange(1000)}", org, rng.choice(KINDS), roles)
    if rng.random() < 0.2:
        what = Resource.system(rng.choice(SYSTEMS))
    else:
        owner = org if rng.random() < 0.3 else rng.choice(ORGS)
        purposes = frozenset(p for p in ALL_PURPOSES[:5] if rng.random() < 0.6)
        what = Resource(f"product-{rng.randrange(5)}", rng.choice(TIERS), owner, purposes)
    purpose = rng.choice((*ALL_PURPOSES, ""))
    return who, what, rng.choice(ACTIONS), purpose


def test_decide_agrees_with_a_plain_casbin_enforcer() -> None:
    reference = casbin.Enforcer(str(MODEL_PATH), str(DEFAULT_POLICY_PATH))
    reference.add_function("subjectMatches", subject_matches)
    reference.add_function("objectMatches", object_matches)
    reference.add_function("purposeMatches", purpose_matches)
    # Casbin keeps each line type apart; the engine keeps the file's order. Same lines,
    # in the same order within each type.
    for kind, lines in (("p", reference.get_policy()), ("p2", reference.get_named_policy("p2"))):
        engine_lines = [line for line in ENGINE.lines if line[0] == kind]
        assert [(kind, *line) for line in lines] == engine_lines
    assert {line[0] for line in ENGINE.lines} == {"p", "p2"}

    rng = random.Random(20261120)
    mismatches = []
    allowed_count = 0
    for _ in range(400):
        who, what, action, purpose = _random_request(rng)
        sub, obj = who.attributes(), what.attributes()
        decision = ENGINE.decide(who, what, action, purpose)
        expected = reference.enforce(sub, obj, action, purpose, "*")
        view = "-"
        if expected:
            allowed_count += 1
            view = next(
                v
                for v in ("protected", "raw", "-")
                if reference.enforce(sub, obj, action, purpose, v)
            )
        if (decision.allowed, decision.view) != (expected, view):
            mismatches.append((sub, obj, action, purpose, expected, view, decision))
    assert mismatches == []
    # The sample exercises both answers, not just denials.
    assert 40 <= allowed_count <= 360

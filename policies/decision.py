"""The one answer to "may subject S do action A on object O for purpose U?".

`PolicyEngine.decide` is pure over its inputs and the loaded policy: it does no
I/O, and it fails closed — an error inside Casbin raises `PolicyError`, never an
allow. Callers describe the subject and the object by their attributes
(`Subject`, `Resource`); the policy lines refer to those attributes, so the
engine needs no copy of the identity or catalog tables and never goes stale when
an organisation or product is added.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

NO_VIEW = "-"
ANY_VIEW = "*"
# When several allow lines match, the most protective of their views wins.
VIEWS_MOST_PROTECTIVE_FIRST = ("protected", "raw")
# In a protected view, each sensitivity gets the most protective treatment that a
# matching p2 line grants; with no such line, its fields are withheld. A keyed
# pseudonym reveals nothing of the value (only that two records share it, for one
# consumer in one epoch); a masked plate reveals its region and first character. A
# redacted image keeps the scene but not the plates and faces in it.
SENSITIVITIES = ("personal", "location", "sensitive", "image")
TREATMENTS_MOST_PROTECTIVE_FIRST = (
    "withheld",
    "redacted",
    "generalized",
    "pseudonymized",
    "masked",
    "raw",
)
# Which treatments a p2 line may give each sensitivity. Which of them fits a field of
# a given type is the exchange's business (a treatment that does not fit falls to the
# next more protective one that does).
TREATMENTS_FOR = {
    "personal": ("withheld", "generalized", "pseudonymized", "masked", "raw"),
    "sensitive": ("withheld", "generalized", "pseudonymized", "masked", "raw"),
    "location": ("withheld", "generalized", "raw"),
    "image": ("withheld", "redacted", "raw"),
}
UNSHAPED = "withheld"


class PolicyError(Exception):
    """The policy could not be loaded or evaluated; callers must deny.

    `line` is the 1-based number of the offending line, when one is to blame."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Subject:
    """Who asks: a principal of an organisation of some kind, with roles."""

    principal: str
    organization: str
    kind: str
    roles: frozenset[str]

    def attributes(self) -> str:
        parts = [f"principal:{self.principal}", f"org:{self.organization}", f"kind:{self.kind}"]
        parts += [f"role:{role}" for role in sorted(self.roles)]
        return " ".join(parts)


@dataclass(frozen=True)
class Resource:
    """What is asked for: a data product (with its tier, owner and purposes) or a
    part of the exchange itself (`Resource.system("audit")`).

    `granted` holds the purposes for which the asking organisation holds an
    active grant on this product: it is part of the request, looked up for each
    one, so a grant revoked or expired stops access at once."""

    name: str
    tier: str | None = None
    owner: str | None = None
    purposes: frozenset[str] = field(default_factory=frozenset)
    granted: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def system(cls, name: str) -> "Resource":
        return cls(name=f"system:{name}")

    @property
    def is_product(self) -> bool:
        return not self.name.startswith("system:")

    def attributes(self) -> str:
        if not self.is_product:
            return self.name
        parts = [f"product:{self.name}", f"tier:{self.tier}", f"owner:{self.owner}"]
        parts += [f"purpose:{purpose}" for purpose in sorted(self.purposes)]
        parts += [f"granted:{purpose}" for purpose in sorted(self.granted)]
        return " ".join(parts)


@dataclass(frozen=True)
class Decision:
    """allowed, why, which line matched, under which policy version, in which view.

    `rule` is the deciding line's values without its type, as Casbin explains it.
    `hint` tells a denied caller what it could do instead, when there is something.
    `treatments` maps each sensitivity to its treatment in the view (all `raw` in
    the raw view, from the p2 lines in a protected one, empty without a view).
    """

    allowed: bool
    reason: str
    rule: tuple[str, ...] | None
    policy_version: str
    view: str
    hint: str | None = None
    treatments: Mapping[str, str] = field(default_factory=dict)

    @property
    def under_grant(self) -> bool:
        """Allowed only because the organisation holds a grant for the purpose."""
        return self.allowed and self.rule is not None and self.rule[3] == "@granted"

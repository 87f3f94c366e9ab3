"""What a policy line may refer to, checked against the exchange as it is now.

A line naming a product, organisation or purpose that does not exist can never
match, so it is almost always a typo that silently changes nothing — or, in a
deny line, silently protects nothing. Only the lines a change adds are checked:
the lines already in force were checked when they were added.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.catalog.models import Definition, Product, ProductVersion, Tier
from exchange.errors import FieldError
from exchange.identity.models import Organization, OrgKind, Principal, Role
from policies import PolicyLine, format_line

ACTIONS = (
    "discover",
    "read",
    "publish",
    "update",
    "register",
    "manage",
    "request_access",
    "reidentify",
    "aggregate",
    "link",
    "cross_check",
    "request_cross_check",
)
# Actions on a product that state a purpose; the others take none.
PURPOSEFUL_ACTIONS = (
    "read",
    "request_access",
    "aggregate",
    "reidentify",
    "cross_check",
    "request_cross_check",
)
PRODUCT_ACTIONS = ("discover", "publish", "update", *PURPOSEFUL_ACTIONS)
SYSTEMS = (
    "identity",
    "catalog",
    "audit",
    "usage",
    "policy",
    "grants",
    "feeds",
    "metrics",
    "linkage",
    "sharing",
)
PURPOSE_PATTERNS = ("*", "@declared", "@granted")


@dataclass(frozen=True)
class Known:
    """The names a line may use."""

    organizations: frozenset[str]
    principals: frozenset[str]
    products: frozenset[str]
    purposes: frozenset[str]

    @classmethod
    def load(cls, session: Session, in_force: Iterable[PolicyLine]) -> "Known":
        """Purposes: those some product declares, and those the policy already uses."""
        definitions = session.scalars(
            select(ProductVersion.definition).join(
                Product,
                (Product.id == ProductVersion.product_id)
                & (Product.current_version == ProductVersion.version),
            )
        )
        purposes = {p for d in definitions for p in Definition.model_validate(d).purposes}
        for line in in_force:
            pattern = line[4] if line[0] == "p" else line[3]
            if pattern not in PURPOSE_PATTERNS:
                purposes.add(pattern)
        return cls(
            organizations=frozenset(session.scalars(select(Organization.slug))),
            principals=frozenset(session.scalars(select(Principal.client_id))),
            products=frozenset(session.scalars(select(Product.slug))),
            purposes=frozenset(purposes),
        )

    def subject_problem(self, term: str) -> str | None:
        name, _, value = term.partition(":")
        allowed = {
            "kind": {kind.value for kind in OrgKind},
            "role": {role.value for role in Role},
            "org": self.organizations,
            "principal": self.principals,
        }
        if name not in allowed:
            return f"subject term {term!r} is not kind:, role:, org: or principal:"
        if value not in allowed[name]:
            return f"no such {name} {value!r}"
        return None

    def object_problem(self, pattern: str) -> str | None:
        if pattern in ("*", "@own"):
            return None
        name, _, value = pattern.partition(":")
        allowed = {
            "tier": {tier.value for tier in Tier},
            "product": self.products,
            "owner": self.organizations,
            "system": set(SYSTEMS),
            "purpose": self.purposes,
            "granted": self.purposes,
        }
        if name not in allowed:
            return f"object {pattern!r} is not *, @own, tier:, product:, owner: or system:"
        if value not in allowed[name]:
            return f"no such {name} {value!r}"
        return None

    def purpose_problem(self, pattern: str) -> str | None:
        if pattern in PURPOSE_PATTERNS or pattern in self.purposes:
            return None
        return f"no product declares the purpose {pattern!r}"

    def problems(self, line: PolicyLine) -> list[str]:
        found = []
        if line[1] != "*":
            found += filter(None, (self.subject_problem(t) for t in line[1].split("+")))
        found += filter(None, [self.object_problem(line[2])])
        if line[0] == "p":
            if line[3] not in ACTIONS:
                found.append(f"no such action {line[3]!r} (actions: {', '.join(ACTIONS)})")
            found += filter(None, [self.purpose_problem(line[4])])
        else:
            found += filter(None, [self.purpose_problem(line[3])])
        return found


def reference_errors(
    known: Known, lines: Sequence[PolicyLine], positions: dict[PolicyLine, int]
) -> list[FieldError]:
    """One error per problem, naming the line's position in the submitted list."""
    return [
        FieldError(f"{problem}: {format_line(line)}", "lines", positions[line])
        for line in lines
        for problem in known.problems(line)
    ]

"""Which fields of a record are stored encrypted, and turning rows back into records.

Fields of sensitivity personal, sensitive, location and image are sealed with the
product's data key (`privacy.sealing`); the rest stay in the `content` column,
where queries can use them (time, district, violation type). Sealed fields that
can be filtered on (text, integers, booleans) also get a blind index: a keyed
digest per value in the `blind` column, which `field=value` filters compare.
The sealed part is bound to the row's clear columns, so editing any of them in
the database makes the record fail to open rather than read differently.
"""

from dataclasses import dataclass
from typing import Any

from exchange.catalog.models import Definition, FieldType, Sensitivity
from exchange.privacy.sealing import DataKey, SealError
from exchange.records.models import Record

SEALED_SENSITIVITIES = frozenset(
    {Sensitivity.personal, Sensitivity.sensitive, Sensitivity.location, Sensitivity.image}
)
FILTERABLE = frozenset({FieldType.string, FieldType.integer, FieldType.boolean})


@dataclass(frozen=True)
class Layout:
    sealed: frozenset[str]
    blind: frozenset[str]

    @classmethod
    def of(cls, definition: Definition) -> "Layout":
        sealed = {f.name for f in definition.fields if f.sensitivity in SEALED_SENSITIVITIES}
        blind = {f.name for f in definition.fields if f.name in sealed and f.type in FILTERABLE}
        return cls(frozenset(sealed), frozenset(blind))


@dataclass(frozen=True)
class Stored:
    """A record as its row holds it."""

    content: dict[str, Any]
    sealed: bytes
    blind: dict[str, str] | None


def seal(layout: Layout, key: DataKey, record_id: str, content: dict[str, Any]) -> Stored:
    """Every record gets a sealed part (empty if it has no protected values), so a
    row whose sealed part was removed is caught, not read as a record without one."""
    plain = {name: value for name, value in content.items() if name not in layout.sealed}
    secret = {name: value for name, value in content.items() if name in layout.sealed}
    blind = {name: key.blind(name, secret[name]) for name in sorted(layout.blind) if name in secret}
    stored_blind = blind or None
    sealed = key.seal_fields(record_id, secret, [plain, stored_blind])
    return Stored(plain, sealed, stored_blind)


def opened(key: DataKey | None, row: Record) -> dict[str, Any]:
    """The record's fields as published. Raises SealError if its row was altered:
    its sealed part missing, moved from another row, or its clear fields or blind
    index changed."""
    if row.sealed is None or key is None:
        raise SealError(f"record {row.record_id!r} has no sealed part that opens")
    clear = [row.content, row.blind]
    return {**row.content, **key.open_fields(row.record_id, row.sealed, clear)}

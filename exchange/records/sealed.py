"""Which fields of a record are stored encrypted, and turning rows back into records.

Only the fields the product's current definition marks sensitivity `none` stay
in the `content` column, where queries can use them (time, district, violation
type); everything else — personal, sensitive, location and image fields, and any
field the definition does not know — is sealed with the product's data key
(`privacy.sealing`). Sealed text and integer fields also get a blind index: a
keyed digest per value in the `blind` column, which `field=value` filters
compare. Booleans get none: two digests would give every value away. A product
that declares a subject kind gets a subject key per record: the keyed digest of
its subject's normalised value (`linkage.keys`), which linkage looks records up by.

The sealed part is bound to the row's clear columns (its subject key included), so
editing any of them in the database makes the record fail to open rather than read
differently. When a product's definition moves a field into or out of the clear,
or changes its subject key, its rows are sealed again (`reseal`), so the table
always matches the current definition.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from exchange.catalog.models import Definition, FieldType, Sensitivity
from exchange.linkage.keys import normalised
from exchange.privacy.sealing import DataKey, SealError
from exchange.records.models import Record

BLIND_TYPES = frozenset({FieldType.string, FieldType.integer})


@dataclass(frozen=True)
class Layout:
    plain: frozenset[str]
    blind: frozenset[str]
    subject: tuple[str, str] | None = None
    """(field, kind) of the subject key, if the product declares one."""

    @classmethod
    def of(cls, definition: Definition) -> "Layout":
        fields = definition.fields
        plain = {f.name for f in fields if f.sensitivity == Sensitivity.none}
        blind = {f.name for f in fields if f.name not in plain and f.type in BLIND_TYPES}
        subject = (
            (definition.subject_field, definition.subject_kind)
            if definition.subject_field and definition.subject_kind
            else None
        )
        return cls(frozenset(plain), frozenset(blind), subject)

    def subject_key(self, key: DataKey, content: dict[str, Any]) -> str | None:
        if self.subject is None:
            return None
        field, kind = self.subject
        value = content.get(field)
        return key.subject_key(kind, normalised(kind, value)) if isinstance(value, str) else None


@dataclass(frozen=True)
class AtRest:
    """A record as its row holds it."""

    content: dict[str, Any]
    sealed: bytes
    blind: dict[str, str] | None
    subject_key: str | None


def seal(layout: Layout, key: DataKey, record_id: str, content: dict[str, Any]) -> AtRest:
    """Every record gets a sealed part (empty if it has no protected values), so a
    row whose sealed part was removed is caught, not read as a record without one."""
    plain = {name: value for name, value in content.items() if name in layout.plain}
    secret = {name: value for name, value in content.items() if name not in layout.plain}
    blind = {name: key.blind(name, secret[name]) for name in sorted(layout.blind) if name in secret}
    stored_blind = blind or None
    subject_key = layout.subject_key(key, content)
    sealed = key.seal_fields(record_id, secret, _clear(plain, stored_blind, subject_key))
    return AtRest(plain, sealed, stored_blind, subject_key)


def _clear(content: Any, blind: Any, subject_key: str | None) -> list[Any]:
    """What the sealed part is bound to: the clear fields, the blind index and the
    subject key (rows without one, as before subject keys existed, bind the first two)."""
    return [content, blind] if subject_key is None else [content, blind, subject_key]


def opened(key: DataKey | None, row: Record) -> dict[str, Any]:
    """The record's fields as published. Raises SealError if its row was altered:
    its sealed part missing, moved from another row, or its clear fields, blind
    index or subject key changed."""
    if row.sealed is None or key is None:
        raise SealError(f"record {row.record_id!r} has no sealed part that opens")
    clear = _clear(row.content, row.blind, row.subject_key)
    return {**row.content, **key.open_fields(row.record_id, row.sealed, clear)}


def reseal(key: DataKey, layout: Layout, rows: Iterable[Record], *, legacy: bool = False) -> int:
    """Store rows again under `layout`; how many. A legacy row (from before
    encryption at rest) holds every field in the clear and an unkeyed hash."""
    count = 0
    for row in rows:
        content = dict(row.content) if legacy else opened(key, row)
        at_rest = seal(layout, key, row.record_id, content)
        row.content, row.sealed, row.blind = at_rest.content, at_rest.sealed, at_rest.blind
        row.subject_key = at_rest.subject_key
        if legacy:
            row.content_hash = key.content_hash(content)
        count += 1
    return count

"""The audit table in the database: append-only, and tampering shows in the chain.

Activity goes through the HTTP API; the attacks go straight to the database with
a connection of their own, as someone with SQL access would.
"""

import hashlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from audit import verify_chain
from audit.store import AuditEntry, AuditHead
from tests.conftest import BASE_URL, Exchange
from tests.products import capture, captures_product

POSTGRES = BASE_URL.startswith("postgresql")
READS = "/v1/products/violation-captures/records"
COLUMNS = [column.name for column in AuditEntry.__table__.columns]


def _activity(exchange: Exchange) -> None:
    """A product registered and published; reads allowed and denied."""
    exchange.register("fleet", captures_product())
    published = exchange.publish("fleet", "violation-captures", [capture(n) for n in range(1, 8)])
    assert published.status_code == 200, published.text
    allowed = exchange.get("police", READS, params={"purpose": "law_enforcement"})
    assert allowed.status_code == 200, allowed.text
    protected = exchange.get("mapco", READS, params={"purpose": "navigation_safety", "limit": 3})
    assert protected.status_code == 200, protected.text
    undeclared = exchange.get("mapco", READS, params={"purpose": "commercial"})
    assert undeclared.status_code == 403, undeclared.text
    forbidden = exchange.get("lab", READS, params={"purpose": "law_enforcement"})
    assert forbidden.status_code == 403, forbidden.text


@pytest.fixture
def raw(exchange: Exchange) -> Iterator[Engine]:
    """A plain connection pool to this test's database, outside the app."""
    _activity(exchange)
    engine = create_engine(exchange.settings.resolved_database_url)
    yield engine
    engine.dispose()


def _rows(connection: Connection) -> list[dict[str, Any]]:
    result = connection.execute(text('SELECT * FROM audit_entry ORDER BY "index"'))
    return [{k: bytes(v) if k == "body" else v for k, v in r._mapping.items()} for r in result]


def _head(connection: Connection) -> tuple[int, str]:
    size, chain = connection.execute(text("SELECT size, chain_hash FROM audit_head")).one()
    return size, chain


def _snapshot(engine: Engine) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    with engine.connect() as connection:
        return _rows(connection), _head(connection)


def _entries(engine: Engine) -> list[SimpleNamespace]:
    with engine.connect() as connection:
        return [SimpleNamespace(**row) for row in _rows(connection)]


def _size(engine: Engine) -> int:
    with engine.connect() as connection:
        return _head(connection)[0]


def _index_of(engine: Engine, action: str, organization: str, decision: str) -> int:
    query = text(
        'SELECT "index" FROM audit_entry WHERE action = :action '
        "AND organization = :organization AND decision = :decision"
    )
    params = {"action": action, "organization": organization, "decision": decision}
    with engine.connect() as connection:
        found = connection.execute(query, params).scalars().all()
    assert len(found) == 1, found
    return found[0]


def _refused(engine: Engine, statement: str, **params: Any) -> str:
    """Run one statement in its own transaction; it must fail. The error text."""
    with pytest.raises(DBAPIError) as caught, engine.begin() as connection:
        connection.execute(text(statement), params)
    return str(caught.value.orig)


# --- the guard ---------------------------------------------------------------------


def test_the_activity_is_logged_and_the_log_verifies(raw: Engine) -> None:
    entries = _entries(raw)
    actions = [(e.action, e.organization, e.decision) for e in entries]
    assert ("product.register", "pearl-robotaxi", "allow") in actions
    assert ("publish", "pearl-robotaxi", "allow") in actions
    assert ("read", "gz-traffic-police", "allow") in actions
    assert ("read", "lingnan-maps", "allow") in actions
    assert ("read", "lingnan-maps", "deny") in actions
    assert ("read", "scut-mobility-lab", "deny") in actions
    assert [e.index for e in entries] == list(range(len(entries)))
    assert verify_chain(entries, expected_size=_size(raw)) is None
    with Session(raw) as session:
        stored = list(session.scalars(select(AuditEntry).order_by(AuditEntry.index)))
        head = session.get(AuditHead, 1)
        assert head is not None
        assert verify_chain(stored, expected_size=head.size) is None
        assert head.chain_hash == stored[-1].chain_hash


def test_update_and_delete_are_refused(raw: Engine) -> None:
    before = _snapshot(raw)
    assert len(before[0]) > 5
    middle = len(before[0]) // 2
    refusals = [
        _refused(raw, "UPDATE audit_entry SET reason = 'x'"),
        _refused(raw, "UPDATE audit_entry SET reason = 'x' WHERE \"index\" = :i", i=middle),
        _refused(raw, 'UPDATE audit_entry SET body = :b WHERE "index" = 0', b=b"{}"),
        _refused(raw, "DELETE FROM audit_entry"),
        _refused(raw, 'DELETE FROM audit_entry WHERE "index" = :i', i=middle),
        _refused(raw, 'DELETE FROM audit_entry WHERE "index" = :i', i=len(before[0]) - 1),
    ]
    assert all("append-only" in refusal for refusal in refusals), refusals
    assert _snapshot(raw) == before
    assert verify_chain(_entries(raw), expected_size=_size(raw)) is None


OVERWRITES = {
    "upsert": 'INSERT INTO audit_entry ({columns}) {source} ON CONFLICT ("index") '
    "DO UPDATE SET reason = 'x'",
    "insert-or-replace": "INSERT OR REPLACE INTO audit_entry ({columns}) {source}",
    "replace": "REPLACE INTO audit_entry ({columns}) {source}",
}


@pytest.mark.parametrize("how", ["upsert"] if POSTGRES else sorted(OVERWRITES))
def test_an_entry_cannot_be_overwritten_by_an_insert(raw: Engine, how: str) -> None:
    """An insert that collides with a stored entry must neither update nor replace
    it. (PostgreSQL has no REPLACE; there the upsert is the whole case.)"""
    before = _snapshot(raw)
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    forged = ", ".join("'x'" if c == "reason" else f'"{c}"' for c in COLUMNS)
    source = f'SELECT {forged} FROM audit_entry WHERE "index" = 1'
    statement = OVERWRITES[how].format(columns=columns, source=source)
    with pytest.raises(DBAPIError), raw.begin() as connection:
        connection.execute(text(statement))
    assert _snapshot(raw) == before


@pytest.mark.skipif(not POSTGRES, reason="TRUNCATE and replication roles are PostgreSQL's")
def test_postgres_refuses_truncate(raw: Engine) -> None:
    before = _snapshot(raw)
    assert "append-only" in _refused(raw, "TRUNCATE audit_entry")
    assert "append-only" in _refused(raw, "TRUNCATE audit_entry CASCADE")
    assert _snapshot(raw) == before


@pytest.mark.skipif(not POSTGRES, reason="session_replication_role is PostgreSQL's")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entry SET reason = 'x'",
        "DELETE FROM audit_entry",
        "TRUNCATE audit_entry",
    ],
)
def test_postgres_replica_role_does_not_skip_the_guard(raw: Engine, statement: str) -> None:
    """Ordinary triggers do not fire for a session in replica mode; ALWAYS ones do."""
    before = _snapshot(raw)
    with raw.connect() as connection:
        connection.execute(text("SET session_replication_role = replica"))
        role = connection.execute(text("SHOW session_replication_role")).scalar()
        assert role == "replica"
        with pytest.raises(DBAPIError) as caught:
            connection.execute(text(statement))
        assert "append-only" in str(caught.value.orig)
        connection.rollback()
    assert _snapshot(raw) == before


# --- tampering shows -------------------------------------------------------------------


def _disable_guard(connection: Connection, trigger: str) -> None:
    """As the database's owner or superuser: switch the append-only guard off."""
    if POSTGRES:
        connection.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_change"))
    else:
        connection.execute(text(f"DROP TRIGGER {trigger}"))


def _tamper_body(engine: Engine, index: int) -> None:
    with engine.connect() as connection:
        body = connection.execute(
            text('SELECT body FROM audit_entry WHERE "index" = :i'), {"i": index}
        ).scalar_one()
    altered = bytearray(body)
    position = altered.index(b'"reason":"') + len(b'"reason":"')
    altered[position] = ord("X") if altered[position] != ord("X") else ord("Y")
    with engine.begin() as connection:
        _disable_guard(connection, "audit_entry_no_update")
        connection.execute(
            text('UPDATE audit_entry SET body = :b WHERE "index" = :i'),
            {"b": bytes(altered), "i": index},
        )


def _tamper_column(engine: Engine, index: int) -> None:
    with engine.begin() as connection:
        _disable_guard(connection, "audit_entry_no_update")
        connection.execute(
            text("UPDATE audit_entry SET reason = 'x' WHERE \"index\" = :i"), {"i": index}
        )


def _tamper_decision(engine: Engine, index: int) -> None:
    """Turn a denial into an allow in both the column and the body (and rehash the leaf)."""
    with engine.connect() as connection:
        body = connection.execute(
            text('SELECT body FROM audit_entry WHERE "index" = :i'), {"i": index}
        ).scalar_one()
    altered = bytes(body).replace(b'"decision":"deny"', b'"decision":"allow"')
    assert altered != bytes(body)
    leaf = hashlib.sha256(b"\x00" + altered).hexdigest()
    with engine.begin() as connection:
        _disable_guard(connection, "audit_entry_no_update")
        connection.execute(
            text(
                "UPDATE audit_entry SET body = :b, decision = 'allow', leaf_hash = :leaf "
                'WHERE "index" = :i'
            ),
            {"b": altered, "leaf": leaf, "i": index},
        )


def _tamper_delete(engine: Engine, index: int) -> None:
    with engine.begin() as connection:
        _disable_guard(connection, "audit_entry_no_delete")
        connection.execute(text('DELETE FROM audit_entry WHERE "index" = :i'), {"i": index})


TAMPERS = {
    "body-byte": _tamper_body,
    "reason-column": _tamper_column,
    "decision-rehashed": _tamper_decision,
    "delete-row": _tamper_delete,
}


@pytest.mark.parametrize("how", sorted(TAMPERS))
def test_tampering_with_a_middle_entry_is_named(raw: Engine, how: str) -> None:
    before = _entries(raw)
    assert verify_chain(before, expected_size=_size(raw)) is None
    target = _index_of(raw, "read", "lingnan-maps", "deny")
    assert 0 < target < len(before) - 1

    TAMPERS[how](raw, target)

    after = _entries(raw)
    found = verify_chain(after)
    assert found is not None, how
    assert found.index == target, found
    with_size = verify_chain(after, expected_size=_size(raw))
    assert with_size is not None
    assert with_size.index == target
    untouched = [e for e in after if e.index != target]
    assert [vars(e) for e in untouched] == [vars(e) for e in before if e.index != target]


@pytest.mark.parametrize("position", ["first", "last"])
def test_tampering_at_either_end_is_named(raw: Engine, position: str) -> None:
    size = len(_entries(raw))
    target = 0 if position == "first" else size - 1
    _tamper_column(raw, target)
    found = verify_chain(_entries(raw), expected_size=_size(raw))
    assert found is not None
    assert found.index == target
    assert "reason" in found.problem


def test_deleting_the_last_entry_is_named_by_the_head(raw: Engine) -> None:
    size = len(_entries(raw))
    _tamper_delete(raw, size - 1)
    after = _entries(raw)
    assert verify_chain(after) is None  # a cut tail leaves a valid prefix
    found = verify_chain(after, expected_size=_size(raw))
    assert found is not None
    assert found.index == size - 1

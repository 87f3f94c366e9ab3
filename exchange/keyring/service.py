"""Data keys: made on a product's first sealed write, unwrapped on use, re-wrapped
by a master key rotation, destroyed to erase a product.

The wrapped key is read from the database on every request that opens or seals
data (one primary-key lookup), so a key destroyed through one worker is refused
by every other at once; unwrapped keys are cached per wrapped value, so a
rotation is followed without a restart.

Making a data key and rotating the master both lock the `key_head` row: a key
is wrapped under the master that is current in the same transaction, and a
rotation re-wraps every key committed before it, so once it commits nothing
depends on the old master and its file can be deleted.
"""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.catalog.models import Product
from exchange.errors import Gone
from exchange.keyring.master import MasterKeys
from exchange.keyring.models import DataKeyRow, KeyHead
from exchange.privacy.sealing import DataKey, new_key, unwrap, wrap
from exchange.timeutil import utcnow

HEAD_ID = 1


class Keyring:
    def __init__(self, masters: MasterKeys) -> None:
        self.masters = masters
        self._unwrapped: dict[tuple[int, bytes], DataKey] = {}

    def _open(self, row: DataKeyRow) -> DataKey:
        if row.wrapped is None or row.master_key_id is None:
            erased = f" on {row.destroyed_at:%Y-%m-%d}" if row.destroyed_at else ""
            raise Gone(f"this product's data was erased{erased} (its key was destroyed)")
        cached = self._unwrapped.get((row.product_id, row.wrapped))
        if cached is None:
            master = self.masters.key(row.master_key_id)
            plain = unwrap(master, row.master_key_id, row.product_id, row.wrapped)
            cached = DataKey(plain, row.product_id)
            if len(self._unwrapped) > 10_000:
                self._unwrapped.clear()
            self._unwrapped[(row.product_id, row.wrapped)] = cached
        return cached

    def for_reading(self, session: Session, product_id: int) -> DataKey | None:
        """The product's key; None if nothing of it was ever sealed. Raises Gone if
        its key was destroyed."""
        row = session.get(DataKeyRow, product_id, populate_existing=True)
        return None if row is None else self._open(row)

    def for_writing(self, session: Session, product_id: int) -> DataKey:
        """The product's key, made now if it has none; takes the product row's lock
        (publishers of one product already queue on it). Raises Gone."""
        session.execute(select(Product.id).where(Product.id == product_id).with_for_update())
        row = session.get(DataKeyRow, product_id, populate_existing=True)
        if row is None:
            master_id = current_master(session, self.masters)
            wrapped = wrap(self.masters.key(master_id), master_id, product_id, new_key())
            row = DataKeyRow(product_id=product_id, wrapped=wrapped, master_key_id=master_id)
            session.add(row)
            session.flush()
        return self._open(row)


def _head(session: Session) -> KeyHead:
    """The head row, locked until the transaction ends."""
    head = session.get(KeyHead, HEAD_ID, with_for_update=True, populate_existing=True)
    if head is None:
        raise RuntimeError("the key head is missing; run `exchange db upgrade`")
    return head


def current_master(session: Session, masters: MasterKeys) -> str:
    """The current master key's id, made on first use; locks the head."""
    head = _head(session)
    if head.current_master_id is None:
        head.current_master_id = masters.create()
        session.flush()
    return head.current_master_id


@dataclass(frozen=True)
class Rotated:
    previous: str | None
    current: str
    rewrapped: int


def rotate(session: Session, masters: MasterKeys) -> Rotated:
    """A new current master key, and every live data key re-wrapped under it (no
    record is touched). The caller commits, then may call `retire`. If the commit
    fails, the new key's file wraps nothing, and the next `retire` deletes it."""
    head = _head(session)
    previous, current = head.current_master_id, masters.create()
    head.current_master_id = current
    rows = session.scalars(
        select(DataKeyRow).where(DataKeyRow.wrapped.is_not(None)).with_for_update()  # type: ignore[union-attr]
    ).all()
    now = utcnow()
    for row in rows:
        assert row.wrapped is not None and row.master_key_id is not None
        old = masters.key(row.master_key_id)
        plain = unwrap(old, row.master_key_id, row.product_id, row.wrapped)
        row.wrapped = wrap(masters.key(current), current, row.product_id, plain)
        row.master_key_id = current
        row.rewrapped_at = now
    session.flush()
    return Rotated(previous, current, len(rows))


def retire(session: Session, masters: MasterKeys) -> list[str]:
    """Delete the master key files that are not current and wrap no data key."""
    in_use = set(
        session.scalars(
            select(DataKeyRow.master_key_id).where(DataKeyRow.master_key_id.is_not(None))  # type: ignore[union-attr]
        )
    )
    in_use.add(_head(session).current_master_id)
    retired = [key_id for key_id in masters.ids() if key_id not in in_use]
    for key_id in retired:
        masters.delete(key_id)
    return retired


def destroy(session: Session, product_id: int, reason: str) -> bool:
    """Forget the product's data key; False if it was destroyed already. Its
    wrapped copy in older backups dies with the master key at the next `retire`
    after a `rotate` (erasing a product does both)."""
    row = session.get(DataKeyRow, product_id, with_for_update=True)
    if row is None:
        row = DataKeyRow(product_id=product_id)
        session.add(row)
    elif row.wrapped is None:
        return False
    row.wrapped, row.master_key_id = None, None
    row.destroyed_at, row.destroyed_reason = utcnow(), reason
    session.flush()
    return True

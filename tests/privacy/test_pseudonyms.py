"""Keyed pseudonyms, as units: one per value in a (consumer, product, epoch) domain,
unrelated across domains and master secrets, over canonical plates, never an unkeyed
hash; epochs and their boundaries; the master secret's size."""

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from exchange.privacy.pseudonyms import Epoch, Pseudonymizer, PseudonymKeys, canonical

MASTER = bytes(range(32))
OTHER_MASTER = bytes(range(1, 33))
PLATE = "粤A·12345"
EPOCH = Epoch(10, 30)
FORMAT = re.compile(r"^ps_[a-z2-7]{26}$")
ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)


def pseudonym(
    value: object,
    consumer: str = "lingnan-maps",
    product: str = "violation-captures",
    epoch: Epoch = EPOCH,
    master: bytes = MASTER,
) -> str | None:
    return PseudonymKeys(master).domain(consumer, product, epoch)(value)


# --- one domain ----------------------------------------------------------------------------------


def test_the_same_value_gets_the_same_pseudonym_in_one_domain() -> None:
    domain = PseudonymKeys(MASTER).domain("lingnan-maps", "violation-captures", EPOCH)
    again = PseudonymKeys(MASTER).domain("lingnan-maps", "violation-captures", Epoch(10, 30))
    first = domain(PLATE)
    assert first is not None
    assert domain(PLATE) == first  # cached
    assert again(PLATE) == first  # recomputed from the master secret alone
    assert pseudonym(PLATE) == first


def test_different_values_get_different_pseudonyms() -> None:
    plates = [f"粤A·{n}" for n in range(10000, 10200)]
    assert len({pseudonym(plate) for plate in plates}) == len(plates)


@pytest.mark.parametrize("value", [PLATE, "粤B·D12345", "a driver's note", "42", 42, 4.5, True])
def test_a_pseudonym_is_ps_and_26_lowercase_base32_characters(value: object) -> None:
    shown = pseudonym(value)
    assert shown is not None
    assert FORMAT.fullmatch(shown), shown


@pytest.mark.parametrize("value", [None, {"lat": 23.1, "lon": 113.3}, ["粤A·12345"]])
def test_values_without_text_have_no_pseudonym(value: object) -> None:
    assert pseudonym(value) is None


def test_the_pseudonym_is_hmac_sha256_truncated_to_128_bits_in_base32() -> None:
    key = bytes(range(100, 132))
    digest = hmac.new(key, "粤A12345".encode(), hashlib.sha256).digest()[:16]
    expected = "ps_" + base64.b32encode(digest).decode().rstrip("=").lower()
    assert Pseudonymizer(key)(PLATE) == expected
    assert Pseudonymizer(bytes(range(101, 133)))(PLATE) != expected


# --- across domains ------------------------------------------------------------------------------


def test_consumers_get_unrelated_pseudonyms() -> None:
    maps = pseudonym(PLATE, consumer="lingnan-maps")
    lab = pseudonym(PLATE, consumer="scut-mobility-lab")
    police = pseudonym(PLATE, consumer="gz-traffic-police")
    assert len({maps, lab, police}) == 3


def test_products_get_unrelated_pseudonyms() -> None:
    assert pseudonym(PLATE, product="violation-captures") != pseudonym(
        PLATE, product="hotline-tickets"
    )


@pytest.mark.parametrize(
    "epoch", [Epoch(9, 30), Epoch(11, 30), Epoch(10, 31), Epoch(10, 1), Epoch(-1, 30)]
)
def test_epochs_get_unrelated_pseudonyms(epoch: Epoch) -> None:
    assert pseudonym(PLATE, epoch=epoch) != pseudonym(PLATE, epoch=EPOCH)


def test_no_two_domains_of_a_grid_share_a_pseudonym() -> None:
    shown = {
        pseudonym(PLATE, consumer, product, Epoch(number, days))
        for consumer in ("lingnan-maps", "scut-mobility-lab", "gz-traffic-police")
        for product in ("violation-captures", "hotline-tickets")
        for number in (0, 1, 2)
        for days in (1, 30)
    }
    assert len(shown) == 3 * 2 * 3 * 2


def test_another_master_secret_gives_other_pseudonyms() -> None:
    assert pseudonym(PLATE, master=OTHER_MASTER) != pseudonym(PLATE, master=MASTER)
    for consumer in ("lingnan-maps", "scut-mobility-lab"):
        assert pseudonym(PLATE, consumer, master=OTHER_MASTER) != pseudonym(PLATE, consumer)


# --- canonical plates ----------------------------------------------------------------------------

SAME_PLATE = [
    "粤A·12345",
    "粤A12345",
    " 粤a·12345 ",
    "粤a12345",
    "粤A-12345",
    "粤A 12345",
    "粤A.12345",
    "粤A•12345",
    "\t粤A·12345\n",
]


@pytest.mark.parametrize("written", SAME_PLATE)
def test_a_plate_however_written_has_one_canonical_form(written: str) -> None:
    assert canonical(written) == "粤A12345"


def test_a_plate_however_written_gets_one_pseudonym() -> None:
    assert len({pseudonym(written) for written in SAME_PLATE}) == 1


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("粤A·12345", "粤B·12345"),  # another city
        ("粤A·12345", "湘A·12345"),  # another province
        ("粤A·12345", "粤A·12346"),
        ("粤A·D12345", "粤A·12345"),  # new-energy plates have six characters
    ],
)
def test_other_plates_stay_other(one: str, other: str) -> None:
    assert canonical(one) != canonical(other)
    assert pseudonym(one) != pseudonym(other)


def test_canonical_keeps_other_text_apart_from_plates() -> None:
    assert canonical("  a driver's note ") == "a driver's note"
    assert canonical(12345) == "12345"
    assert canonical(None) is None


# --- no unkeyed hash -----------------------------------------------------------------------------

UNKEYED = {
    "sha256": hashlib.sha256,
    "sha1": hashlib.sha1,
    "md5": hashlib.md5,
    "blake2b": hashlib.blake2b,
    "sha3_256": hashlib.sha3_256,
}


def _unkeyed_forms(text: str) -> set[str]:
    """What an unkeyed hash of the text could look like as a pseudonym's 26 characters."""
    forms = set()
    for make in UNKEYED.values():
        digest = make(text.encode()).digest()
        hexed = digest.hex()
        forms |= {hexed[:26], hexed[-26:]}
        for length in (16, len(digest)):
            forms.add(base64.b32encode(digest[:length]).decode().rstrip("=").lower()[:26])
    return forms


@pytest.mark.parametrize("plate", ["粤A·12345", "粤A·D12345", "粤B·7K3Q2"])
def test_a_pseudonym_is_no_unkeyed_hash_of_the_plate(plate: str) -> None:
    shown = pseudonym(plate)
    assert shown is not None
    body = shown.removeprefix("ps_")
    for text in {plate, canonical(plate) or "", plate.replace("·", "")}:
        assert body not in _unkeyed_forms(text)
        for make in UNKEYED.values():
            hexed = make(text.encode()).hexdigest()
            assert body not in hexed
            assert shown not in hexed


def test_a_pseudonym_depends_on_the_master_secret_not_only_on_the_plate() -> None:
    # Anyone can hash every plate; nobody without the master secret can compute these.
    masters = [bytes([n]) * 32 for n in range(8)]
    assert len({pseudonym(PLATE, master=master) for master in masters}) == len(masters)


# --- epochs --------------------------------------------------------------------------------------


def test_epoch_zero_starts_on_2026_01_01_utc() -> None:
    epoch = Epoch.at(ORIGIN, 30)
    assert epoch == Epoch(0, 30)
    assert (epoch.start, epoch.end) == (ORIGIN, ORIGIN + timedelta(days=30))


@pytest.mark.parametrize("days", [1, 7, 30, 366])
def test_an_epoch_holds_its_start_and_not_its_end(days: int) -> None:
    epoch = Epoch(5, days)
    assert epoch.end - epoch.start == timedelta(days=days)
    assert Epoch.at(epoch.start, days) == epoch
    assert Epoch.at(epoch.start + timedelta(days=days / 2), days) == epoch
    assert Epoch.at(epoch.end - timedelta(microseconds=1), days) == epoch
    after = Epoch.at(epoch.end, days)  # exactly at the end: the next epoch
    assert after == Epoch(6, days)
    assert after.start == epoch.end
    assert Epoch.at(epoch.start - timedelta(microseconds=1), days) == Epoch(4, days)


def test_epochs_follow_utc_whatever_the_offset() -> None:
    guangzhou = timezone(timedelta(hours=8))
    # 07:59 on 2 January in Guangzhou is still 1 January UTC: epoch 0 of one day.
    assert Epoch.at(datetime(2026, 1, 2, 7, 59, tzinfo=guangzhou), 1) == Epoch(0, 1)
    assert Epoch.at(datetime(2026, 1, 2, 8, 0, tzinfo=guangzhou), 1) == Epoch(1, 1)


def test_moments_before_the_origin_have_negative_epochs() -> None:
    epoch = Epoch.at(ORIGIN - timedelta(microseconds=1), 30)
    assert epoch == Epoch(-1, 30)
    assert (epoch.start, epoch.end) == (ORIGIN - timedelta(days=30), ORIGIN)


def test_a_day_long_epoch_changes_at_midnight_utc() -> None:
    moment = datetime(2026, 11, 28, 23, 59, 59, 999999, tzinfo=UTC)
    today, tomorrow = Epoch.at(moment, 1), Epoch.at(moment + timedelta(microseconds=1), 1)
    assert tomorrow.number == today.number + 1
    assert today.end == tomorrow.start == datetime(2026, 11, 29, tzinfo=UTC)
    assert pseudonym(PLATE, epoch=today) != pseudonym(PLATE, epoch=tomorrow)


# --- the master secret ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 16, 31])
def test_a_master_secret_shorter_than_32_bytes_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PseudonymKeys(b"k" * size)


@pytest.mark.parametrize("size", [32, 33, 64])
def test_a_master_secret_of_32_bytes_or_more_is_accepted(size: int) -> None:
    keys = PseudonymKeys(bytes(range(size)))
    assert FORMAT.fullmatch(keys.domain("lingnan-maps", "p", EPOCH)(PLATE) or "")

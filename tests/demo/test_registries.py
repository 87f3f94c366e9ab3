"""The demo's registries of homes and companies, whose addresses meet only once
normalised, and the hotline's parking reports, whose plates meet the fleet's."""

import random
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from connectors.fleet import violation_captures
from connectors.fleet.geography import ROADS
from exchange.demo.parking import illegal_parking_reports
from exchange.demo.registries import (
    DEMO_HOMES,
    HOME_OFFICES,
    MIN_HOMES,
    PLANTED_BUILDING,
    PLANTED_COMPANIES,
    PLANTED_HOMES,
    business_registrations,
    residential_addresses,
)
from exchange.linkage import keys

Generator = Callable[..., list[dict[str, object]]]
Records = list[dict[str, object]]

NOW = datetime(2026, 11, 28, 9, 30, 15, 123456, tzinfo=UTC)
COMPANIES = 400
REPORTS = 300
CAPTURES = 3000

HOME_FIELDS = {
    "id",
    "address",
    "estate",
    "building",
    "district",
    "registered_at",
    "household_size",
}
BUSINESS_FIELDS = {
    "id",
    "registration_no",
    "company_name",
    "registered_address",
    "district",
    "business_type",
    "registered_on",
    "legal_representative",
}
REPORT_FIELDS = {
    "id",
    "reported_at",
    "district",
    "road",
    "plate",
    "description",
    "caller_phone",
    "location",
    "status",
}

# (generator, count, id prefix, timestamp field, fields)
KINDS = [
    (residential_addresses, DEMO_HOMES, "home", "registered_at", HOME_FIELDS),
    (business_registrations, COMPANIES, "biz", "registered_on", BUSINESS_FIELDS),
    (illegal_parking_reports, REPORTS, "park", "reported_at", REPORT_FIELDS),
]
GENERATORS = [(kind[0], kind[1]) for kind in KINDS]

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
CREDIT_CODE = re.compile(r"^91\d{6}[0-9A-HJ-NP-RTUWXY]{10}$")
PHONE = re.compile(r"^1(3|5|8|9)\d{9}$")
CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@pytest.fixture(scope="module")
def homes() -> Records:
    return residential_addresses(DEMO_HOMES, now=NOW)


@pytest.fixture(scope="module")
def companies() -> Records:
    return business_registrations(COMPANIES, now=NOW)


@pytest.fixture(scope="module")
def reports() -> Records:
    return illegal_parking_reports(REPORTS, now=NOW)


@pytest.fixture(scope="module")
def home_by_key(homes: Records) -> dict[str, dict[str, object]]:
    return {keys.address(str(home["address"])): home for home in homes}


def moment(text: object) -> datetime:
    assert isinstance(text, str) and TIMESTAMP.match(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize(("generate", "count"), GENERATORS)
def test_same_arguments_give_identical_output(generate: Generator, count: int) -> None:
    assert generate(count, now=NOW) == generate(count, now=NOW)
    assert generate(count, seed=99, now=NOW) == generate(count, seed=99, now=NOW)
    assert generate(count, seed=99, now=NOW) != generate(count, seed=100, now=NOW)


@pytest.mark.parametrize(("generate", "count"), GENERATORS)
def test_global_random_state_is_left_alone(generate: Generator, count: int) -> None:
    random.seed(1)
    expected = random.random()
    random.seed(1)
    generate(count, now=NOW)
    assert random.random() == expected


@pytest.mark.parametrize(("generate", "count", "prefix", "stamp", "fields"), KINDS)
def test_counts_ids_fields_and_timestamps_before_now(
    generate: Generator, count: int, prefix: str, stamp: str, fields: set[str]
) -> None:
    records = generate(count, now=NOW)
    assert [record["id"] for record in records] == [
        f"{prefix}-{n:06d}" for n in range(1, count + 1)
    ]
    for record in records:
        assert set(record) == fields
        assert moment(record[stamp]) < NOW
        assert record["district"] in ROADS


def test_the_registries_take_other_counts() -> None:
    assert len(residential_addresses(MIN_HOMES, now=NOW)) == MIN_HOMES
    assert len(residential_addresses(2500, now=NOW)) == 2500
    smallest = PLANTED_COMPANIES + HOME_OFFICES
    assert len(business_registrations(smallest, now=NOW, homes=MIN_HOMES)) == smallest
    assert illegal_parking_reports(0, now=NOW) == []


def test_the_seed_draws_the_registrations_not_the_layout() -> None:
    first = residential_addresses(MIN_HOMES, now=NOW)
    other = residential_addresses(MIN_HOMES, seed=5, now=NOW)
    assert [home["address"] for home in first] == [home["address"] for home in other]


def test_home_addresses_are_housing_bureau_style_and_unique(homes: Records) -> None:
    assert len({keys.address(str(home["address"])) for home in homes}) == len(homes)
    for home in homes:
        address = str(home["address"])
        assert re.match(r"^Room \d+, Building \d+, ", address), address
        assert f", {home['estate']}, " in address
        assert address.endswith(f", {home['district']} District")
        assert str(home["building"]).startswith(f"{home['estate']} Building ")
        assert not re.search(r"\b(Rm|Bldg|Ave|Rd)\b", address), address
        assert home["household_size"] in range(1, 7)
    assert {home["district"] for home in homes} == set(ROADS)


def test_the_registry_has_many_buildings_and_a_planted_one_of_136(homes: Records) -> None:
    buildings = Counter(str(home["building"]) for home in homes)
    assert buildings[PLANTED_BUILDING] == PLANTED_HOMES == 136
    assert len(buildings) >= 15
    assert len({home["estate"] for home in homes}) >= 8


def test_homes_are_registered_before_now_over_the_years(homes: Records) -> None:
    stamps = [moment(home["registered_at"]) for home in homes]
    assert max(stamps) < NOW
    assert min(stamps) < NOW - timedelta(days=5 * 365)


def test_half_the_planted_building_is_registered_to_companies(
    companies: Records, home_by_key: dict[str, dict[str, object]]
) -> None:
    at_homes = [
        home_by_key[key]
        for company in companies
        if (key := keys.address(str(company["registered_address"]))) in home_by_key
    ]
    buildings = Counter(str(home["building"]) for home in at_homes)
    assert buildings[PLANTED_BUILDING] == PLANTED_COMPANIES == PLANTED_HOMES // 2
    assert len(at_homes) == PLANTED_COMPANIES + HOME_OFFICES
    assert len({home["id"] for home in at_homes}) == len(at_homes)


def test_no_address_is_written_the_same_way_in_both_registries(
    homes: Records, companies: Records
) -> None:
    written = {home["address"] for home in homes}
    assert not [c for c in companies if c["registered_address"] in written]
    lowered = {str(address).casefold() for address in written}
    assert not [c for c in companies if str(c["registered_address"]).casefold() in lowered]


def test_a_company_at_a_home_is_in_that_homes_district(
    companies: Records, home_by_key: dict[str, dict[str, object]]
) -> None:
    for company in companies:
        home = home_by_key.get(keys.address(str(company["registered_address"])))
        if home:
            assert company["district"] == home["district"]


def test_commercial_addresses_are_not_in_the_housing_registry(
    companies: Records, home_by_key: dict[str, dict[str, object]]
) -> None:
    commercial = [
        company
        for company in companies
        if keys.address(str(company["registered_address"])) not in home_by_key
    ]
    assert len(commercial) == COMPANIES - PLANTED_COMPANIES - HOME_OFFICES
    for company in commercial:
        address = str(company["registered_address"])
        assert re.search(r"(?i)\b(shop|plaza|centre|square|mansion)\b", address), address


def test_the_business_registry_is_written_its_own_way(companies: Records) -> None:
    addresses = [str(company["registered_address"]) for company in companies]
    assert all(re.search(r"(?i)\b(ave|rd)\b", address) for address in addresses)
    assert any(address.isupper() for address in addresses)
    assert any(address.islower() for address in addresses)
    assert any("  " in address for address in addresses)


def test_planted_companies_registered_recently(
    companies: Records, home_by_key: dict[str, dict[str, object]]
) -> None:
    for company in companies:
        home = home_by_key.get(keys.address(str(company["registered_address"])))
        if home and home["building"] == PLANTED_BUILDING:
            assert moment(company["registered_on"]) > NOW - timedelta(days=540)


def test_companies_are_well_formed(companies: Records) -> None:
    codes = [str(company["registration_no"]) for company in companies]
    assert len(set(codes)) == len(codes)
    names = [str(company["company_name"]) for company in companies]
    assert len(set(names)) == len(names)
    for company, code in zip(companies, codes, strict=True):
        assert CREDIT_CODE.match(code), code
        assert code[17] == check_character(code[:17])
        assert str(company["company_name"]).startswith("Guangzhou ")
        assert str(company["company_name"]).endswith(" Co., Ltd.")
        assert re.match(r"^[A-Z][a-z]+ [A-Z][a-z]+$", str(company["legal_representative"]))
    stamps = [company["registered_on"] for company in companies]
    assert stamps == sorted(stamps)
    assert {company["business_type"] for company in companies} >= {
        "trading",
        "consulting",
        "technology",
        "catering",
        "logistics",
    }


def check_character(body: str) -> str:
    """GB 32100's check character: weights 3^i mod 31 over the 31-character set."""
    total = sum(CODE_CHARS.index(char) * pow(3, i, 31) for i, char in enumerate(body))
    return CODE_CHARS[(31 - total % 31) % 31]


def test_the_check_character_is_the_standards() -> None:
    assert check_character("91350100M000100Y4") == "3"


def test_the_business_registry_follows_the_housing_registrys_size() -> None:
    homes = residential_addresses(MIN_HOMES, now=NOW)
    home_keys = {keys.address(str(home["address"])) for home in homes}
    companies = business_registrations(COMPANIES, now=NOW, homes=MIN_HOMES)
    matched = [c for c in companies if keys.address(str(c["registered_address"])) in home_keys]
    assert len(matched) == PLANTED_COMPANIES + HOME_OFFICES


@pytest.fixture(scope="module")
def captured_plates() -> dict[str, set[str]]:
    """The fleet's published week: each normalised plate, and how the cameras wrote it."""
    plates: dict[str, set[str]] = {}
    for capture in violation_captures(CAPTURES, now=NOW):
        plates.setdefault(keys.plate(str(capture["plate"])), set()).add(str(capture["plate"]))
    return plates


def test_most_reported_plates_were_caught_by_the_fleet(
    reports: Records, captured_plates: dict[str, set[str]]
) -> None:
    plates = [str(report["plate"]) for report in reports]
    caught = [plate for plate in plates if keys.plate(plate) in captured_plates]
    assert 0.8 < len(caught) / len(plates) < 0.97
    spelled_otherwise = [
        plate for plate in caught if plate not in captured_plates[keys.plate(plate)]
    ]
    assert 0.5 < len(spelled_otherwise) / len(caught) < 0.95
    assert any(" " in plate for plate in plates)
    assert any(plate != plate.upper() for plate in plates)


def test_a_report_of_a_caught_plate_is_on_a_road_where_it_was_caught(reports: Records) -> None:
    where: dict[str, set[tuple[object, object]]] = {}
    for capture in violation_captures(CAPTURES, now=NOW):
        if capture["violation_type"] == "illegal_parking":
            spot = (capture["district"], capture["road"])
            where.setdefault(keys.plate(str(capture["plate"])), set()).add(spot)
    for report in reports:
        spots = where.get(keys.plate(str(report["plate"])))
        if spots:
            assert (report["district"], report["road"]) in spots


def test_reports_are_well_formed(reports: Records) -> None:
    stamps = [moment(report["reported_at"]) for report in reports]
    assert stamps == sorted(stamps)
    assert min(stamps) > NOW - timedelta(days=7)
    for report in reports:
        road = next(road for road in ROADS[str(report["district"])] if road.name == report["road"])
        assert PHONE.match(str(report["caller_phone"]))
        description = str(report["description"])
        assert road.name in description and description.endswith(".")
        location = report["location"]
        assert isinstance(location, dict) and set(location) == {"lat", "lon"}
        assert 22.5 <= location["lat"] <= 23.9 and 112.9 <= location["lon"] <= 114.1
    assert {report["status"] for report in reports} == {"open", "assigned", "resolved"}


@pytest.mark.parametrize(("generate", "count"), GENERATORS)
def test_negative_count_is_refused(generate: Generator, count: int) -> None:
    with pytest.raises(ValueError, match="count"):
        generate(-1, now=NOW)


@pytest.mark.parametrize(("generate", "count"), GENERATORS)
def test_naive_now_is_refused(generate: Generator, count: int) -> None:
    with pytest.raises(ValueError, match="timezone"):
        generate(count, now=datetime(2026, 11, 28, 9, 30))


def test_too_small_registries_are_refused() -> None:
    with pytest.raises(ValueError, match="count must be at least"):
        residential_addresses(MIN_HOMES - 1, now=NOW)
    with pytest.raises(ValueError, match="count must be at least"):
        business_registrations(PLANTED_COMPANIES + HOME_OFFICES - 1, now=NOW)
    with pytest.raises(ValueError, match="homes must be at least"):
        business_registrations(COMPANIES, now=NOW, homes=MIN_HOMES - 1)

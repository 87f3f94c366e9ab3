"""The city's two registries of places for the demo: homes and companies.

The story: a residential building of 136 homes turned out to have half of them
registered as company addresses. Nobody had noticed, because the market regulator's
business registry and the housing bureau's registry of homes were never compared;
and they could not have been compared by eye, since each writes an address its own
way ("Room 1203, Building 3, Yunxi Garden, 88 Huangpu Avenue, Tianhe District" in
one, "88 Huangpu Ave, Yunxi Garden Bldg 3, Rm 1203, Tianhe" in the other). Only
their normalised keys (`exchange.linkage.keys.address`) meet.

    residential_addresses    the housing bureau's homes, one record per home
    business_registrations   the market regulator's companies and their addresses

Both are drawn over one layout of estates and buildings on the fleet's map of
Guangzhou (`connectors.fleet.geography`). The layout depends only on the number of
homes and its own fixed seed, so `business_registrations(..., homes=n)` points at
the homes of `residential_addresses(n, ...)` whatever seeds the two calls take. Of
the companies, PLANTED_COMPANIES sit in PLANTED_BUILDING, HOME_OFFICES at ordinary
homes elsewhere, and the rest at office blocks and shop fronts that are not in the
housing registry.

Everything is synthetic: the districts, their division codes and the roads are
real; every estate, building, company, person, registration code and street number
is invented. Deterministic: the layout and each call draw from their own
`random.Random`.
"""

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from connectors.fleet.draws import weighted
from connectors.fleet.geography import ROADS, Road, pick_road
from connectors.fleet.history import rfc3339, window_end

DEMO_HOMES = 1200
"""The homes the demo's housing registry lists; the default layout of the companies."""

MIN_HOMES = 300
"""The fewest homes a registry may list: the planted estate and room for home offices."""

PLANTED_BUILDING = "Yunxi Garden Building 3"
PLANTED_HOMES = 136
"""The planted building's homes: 17 floors of 8."""

PLANTED_COMPANIES = 68
"""Companies registered at the planted building's homes: one in each of half of them."""

HOME_OFFICES = 12
"""Companies registered at ordinary homes outside the planted building."""

_LAYOUT_SEED = 1136
_DAY = 86_400

_PLANTED_ESTATE = "Yunxi Garden"
_PLANTED_STREET_NUMBER = 88
_PLANTED_ESTATE_AGE_DAYS = 8 * 365
_PLANTED_BURST_DAYS = 540  # the planted companies all registered in the last 18 months
_ORDINARY_COMPANY_DAYS = 15 * 365

_SYLLABLES = (
    *("Jin", "Yun", "Cui", "Hui", "Ming", "Lan", "Bi", "Xiang", "Fu", "Jia", "Rui"),
    *("Tian", "Hong", "Xin", "Long", "Hua", "Yi", "Sheng", "Kai", "Bo", "Heng", "Tai"),
)
_SECOND_SYLLABLES = (
    *("hui", "xi", "ting", "yuan", "feng", "hua", "lin", "shui", "jing", "yue", "tong"),
    *("hai", "sheng", "cheng", "da", "an", "rong", "xing", "yang", "he", "bao"),
)
# No word the address normaliser knows (tower, block, lane, road...) in these names.
_ESTATE_KINDS = ("Garden", "Court", "Residence", "Village", "Park", "Heights", "New Village")
_OFFICE_KINDS = ("Plaza", "Centre", "Square", "Business Centre", "Mansion", "Commercial Plaza")

# The business registry's spellings of the road words the housing bureau spells out.
_ROAD_ABBREVIATIONS = {
    "Avenue": "Ave",
    "Road": "Rd",
    "North": "N",
    "South": "S",
    "East": "E",
    "West": "W",
}

_HOUSEHOLD_SIZES: dict[str, int] = {"1": 15, "2": 28, "3": 30, "4": 17, "5": 7, "6": 3}

_TRADE_NAMES: dict[str, tuple[str, ...]] = {
    "trading": ("Trading", "Import and Export", "Commerce and Trade"),
    "consulting": ("Business Consulting", "Enterprise Management Consulting"),
    "technology": ("Technology", "Information Technology", "Network Technology"),
    "catering": ("Catering Management", "Food and Beverage"),
    "logistics": ("Logistics", "Supply Chain Management", "Freight Forwarding"),
    "media": ("Culture Media", "Advertising"),
    "e_commerce": ("E-commerce",),
}
_BUSINESS_TYPES: dict[str, int] = {
    "trading": 26,
    "consulting": 16,
    "technology": 18,
    "catering": 14,
    "logistics": 10,
    "media": 8,
    "e_commerce": 8,
}
# What the planted building's companies say they do: the usual shell trades.
_SHELL_TYPES: dict[str, int] = {"trading": 45, "consulting": 30, "technology": 15, "e_commerce": 10}
_NOMINEES = 5  # the planted companies share a handful of legal representatives

_SURNAMES = (
    *("Chen", "Li", "Huang", "Zhang", "Liang", "Lin", "Wu", "Liu", "He", "Zhou"),
    *("Luo", "Zheng", "Xie", "Mai", "Guo", "Tan", "Lu", "Yang", "Feng", "Deng"),
)
_GIVEN_NAMES = (
    *("Wei", "Jianhua", "Xiaoling", "Zhiqiang", "Meiling", "Jun", "Hao", "Yuting"),
    *("Weiming", "Lihua", "Guoqiang", "Xiumei", "Jiaxin", "Zihao", "Shufen", "Haiyan"),
    *("Zhenyu", "Qiong", "Wenjie", "Yanping", "Jiahui", "Dongsheng", "Liping", "Kai"),
)

# Unified social credit codes: "91" (a company registered with the market
# regulator), the district's division code, nine characters and a check character.
_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CODE_WEIGHTS = tuple(pow(3, position, 31) for position in range(17))
_DIVISION_CODES = {
    "Liwan": "440103",
    "Yuexiu": "440104",
    "Haizhu": "440105",
    "Tianhe": "440106",
    "Baiyun": "440111",
    "Huangpu": "440112",
    "Panyu": "440113",
}


class _Estate(NamedTuple):
    name: str
    district: str
    road: Road
    street_number: int
    age_days: int  # completed this many days before now


class _Building(NamedTuple):
    estate: _Estate
    number: int
    floors: int
    units: int

    @property
    def name(self) -> str:
        return f"{self.estate.name} Building {self.number}"


class _Home(NamedTuple):
    building: _Building
    floor: int
    unit: int

    @property
    def room(self) -> str:
        return f"{self.floor}{self.unit:02d}"


class _Site(NamedTuple):
    """Where a company is registered, and how long ago it can have been."""

    district: str
    address: str
    planted: bool
    open_days: int


def residential_addresses(count: int, *, seed: int = 19, now: datetime) -> list[dict[str, object]]:
    """Return the housing bureau's registry of `count` homes, PLANTED_BUILDING among them.

    Fields: id, address, estate, building, district, registered_at, household_size.
    Listed by district, estate, building and room; the last building drawn may be
    listed only in part. `seed` draws the registrations, not the layout. Raises
    `ValueError` for a count below MIN_HOMES or a naive `now`.
    """
    end = window_end(count, now)
    _check_at_least("count", count, MIN_HOMES)
    rng = random.Random(seed)
    records: list[dict[str, object]] = []
    for number, home in enumerate(_homes(count), start=1):
        estate = home.building.estate
        records.append(
            {
                "id": f"home-{number:06d}",
                "address": _housing_address(home),
                "estate": estate.name,
                "building": home.building.name,
                "district": estate.district,
                "registered_at": rfc3339(_days_before(rng, end, estate.age_days)),
                "household_size": int(weighted(rng, _HOUSEHOLD_SIZES)),
            }
        )
    return records


def business_registrations(
    count: int, *, seed: int = 23, now: datetime, homes: int = DEMO_HOMES
) -> list[dict[str, object]]:
    """Return the market regulator's registry of `count` companies.

    `homes` is the count of the housing registry they are checked against:
    PLANTED_COMPANIES of them are at homes in PLANTED_BUILDING, HOME_OFFICES at other
    homes of that registry, the rest at commercial addresses it does not list. Fields:
    id, registration_no, company_name, registered_address, district, business_type,
    registered_on, legal_representative; in order of registration. Raises
    `ValueError` for a count below PLANTED_COMPANIES + HOME_OFFICES, homes below
    MIN_HOMES, or a naive `now`.
    """
    end = window_end(count, now)
    _check_at_least("count", count, PLANTED_COMPANIES + HOME_OFFICES)
    _check_at_least("homes", homes, MIN_HOMES)
    rng = random.Random(seed)
    commercial = count - PLANTED_COMPANIES - HOME_OFFICES
    sites = _home_sites(rng, _homes(homes)) + _commercial_sites(rng, commercial)
    nominees = [_person(rng) for _ in range(_NOMINEES)]
    codes: set[str] = set()
    names: set[str] = set()
    drawn = [_registration(rng, site, end, nominees, codes, names) for site in sites]
    drawn.sort(key=lambda record: str(record["registered_on"]))
    return [{"id": f"biz-{number:06d}", **record} for number, record in enumerate(drawn, 1)]


def _check_at_least(name: str, value: int, least: int) -> None:
    if value < least:
        raise ValueError(f"{name} must be at least {least}, not {value}")


def _homes(count: int) -> list[_Home]:
    """The first `count` homes of the layout, in the registry's order.

    The planted estate comes first in the drawing, so every count of at least
    MIN_HOMES lists all of it."""
    rng = random.Random(_LAYOUT_SEED)
    buildings = _planted_estate()
    names = {_PLANTED_ESTATE}
    places = {(buildings[0].estate.road.name, _PLANTED_STREET_NUMBER)}
    total = sum(building.floors * building.units for building in buildings)
    while total < count:
        estate = _new_estate(rng, names, places)
        for number in range(1, rng.randint(1, 3) + 1):
            building = _new_building(rng, estate, number)
            buildings.append(building)
            total += building.floors * building.units
    homes = [home for building in buildings for home in _rooms(building)][:count]
    return sorted(homes, key=_listing_order)


def _planted_estate() -> list[_Building]:
    road = next(road for road in ROADS["Tianhe"] if road.name == "Huangpu Avenue")
    estate = _Estate(
        _PLANTED_ESTATE, "Tianhe", road, _PLANTED_STREET_NUMBER, _PLANTED_ESTATE_AGE_DAYS
    )
    return [_Building(estate, 1, 11, 4), _Building(estate, 2, 11, 4), _Building(estate, 3, 17, 8)]


def _new_estate(rng: random.Random, names: set[str], places: set[tuple[str, int]]) -> _Estate:
    """An estate with a name and a street number no other estate has."""
    while True:
        name = f"{_brand(rng)} {rng.choice(_ESTATE_KINDS)}"
        district, road = pick_road(rng)
        place = (road.name, rng.randint(1, 480))
        if name not in names and place not in places:
            names.add(name)
            places.add(place)
            return _Estate(name, district, road, place[1], rng.randint(2 * 365, 30 * 365))


def _new_building(rng: random.Random, estate: _Estate, number: int) -> _Building:
    """A walk-up of 6-9 floors or a tower of 11-24, with 2-6 homes a floor."""
    if rng.random() < 0.55:
        return _Building(estate, number, rng.randint(6, 9), rng.randint(2, 4))
    return _Building(estate, number, rng.randint(11, 24), rng.randint(2, 6))


def _rooms(building: _Building) -> list[_Home]:
    return [
        _Home(building, floor, unit)
        for floor in range(1, building.floors + 1)
        for unit in range(1, building.units + 1)
    ]


def _listing_order(home: _Home) -> tuple[str, str, int, int, int]:
    estate = home.building.estate
    return estate.district, estate.name, home.building.number, home.floor, home.unit


def _housing_address(home: _Home) -> str:
    """The housing bureau's spelling: every word in full, from the room outwards."""
    estate = home.building.estate
    return (
        f"Room {home.room}, Building {home.building.number}, {estate.name}, "
        f"{estate.street_number} {estate.road.name}, {estate.district} District"
    )


def _business_address(rng: random.Random, home: _Home) -> str:
    """The business registry's spelling of a home: abbreviated, street first or
    in another order, and as a clerk typed it."""
    estate = home.building.estate
    room = f"{rng.choice(('Rm', 'Rm.', 'Unit', 'Flat'))} {home.room}"
    block = f"{rng.choice(('Bldg', 'Bldg.', 'Blk', 'Block'))} {home.building.number}"
    street = f"{estate.street_number} {_abbreviated(estate.road.name)}"
    layouts = (
        f"{street}, {estate.name} {block}, {room}, {estate.district}",
        f"{estate.district}, {street}, {estate.name}, {block}-{room}",
        f"{room}, {block}, {estate.name}, No. {street}, {estate.district}",
    )
    return _as_typed(rng, rng.choice(layouts))


def _abbreviated(road: str) -> str:
    return " ".join(_ROAD_ABBREVIATIONS.get(word, word) for word in road.split())


def _as_typed(rng: random.Random, address: str) -> str:
    """Mostly as written; sometimes in capitals or lower case, or oddly spaced."""
    roll = rng.random()
    if roll < 0.08:
        return address.upper()
    if roll < 0.16:
        return address.lower()
    if roll < 0.24:
        return address.replace(", ", ",")
    if roll < 0.30:
        return address.replace(" ", "  ")
    return address


def _home_sites(rng: random.Random, homes: list[_Home]) -> list[_Site]:
    """Half the planted building's homes, and HOME_OFFICES homes elsewhere."""
    planted = [home for home in homes if home.building.name == PLANTED_BUILDING]
    others = [home for home in homes if home.building.name != PLANTED_BUILDING]
    chosen = rng.sample(planted, PLANTED_COMPANIES) + rng.sample(others, HOME_OFFICES)
    return [_home_site(rng, home) for home in chosen]


def _home_site(rng: random.Random, home: _Home) -> _Site:
    """A company at `home`, registered after the estate was built; in the planted
    building, recently."""
    estate = home.building.estate
    planted = home.building.name == PLANTED_BUILDING
    days = _PLANTED_BURST_DAYS if planted else min(estate.age_days, _ORDINARY_COMPANY_DAYS)
    return _Site(estate.district, _business_address(rng, home), planted, days)


class _Office(NamedTuple):
    name: str
    district: str
    road: Road
    street_number: int
    floors: int


def _commercial_sites(rng: random.Random, count: int) -> list[_Site]:
    """Rooms in a few dozen office blocks, and shop fronts along the roads.

    Their names and shop numbers are words no home's address has, so none of them
    is in the housing registry."""
    offices = [_new_office(rng) for _ in range(max(1, count // 12))]
    sites = []
    for _ in range(count):
        if rng.random() < 0.75:
            district, address = _office_address(rng, rng.choice(offices))
        else:
            district, address = _shop_address(rng)
        sites.append(_Site(district, _as_typed(rng, address), False, _ORDINARY_COMPANY_DAYS))
    return sites


def _new_office(rng: random.Random) -> _Office:
    district, road = pick_road(rng)
    name = f"{_brand(rng)} {rng.choice(_OFFICE_KINDS)}"
    return _Office(name, district, road, rng.randint(1, 480), rng.randint(8, 45))


def _office_address(rng: random.Random, office: _Office) -> tuple[str, str]:
    floor = rng.randint(2, office.floors)
    room = f"{floor}{rng.randint(1, 20):02d}"
    street = f"{office.street_number} {_abbreviated(office.road.name)}"
    layouts = (
        f"Rm {room}, {floor}/F, {office.name}, {street}, {office.district}",
        f"{street}, {office.name} Rm {room}, {office.district}",
    )
    return office.district, rng.choice(layouts)


def _shop_address(rng: random.Random) -> tuple[str, str]:
    district, road = pick_road(rng)
    street = f"{rng.randint(1, 480)} {_abbreviated(road.name)}"
    shop = rng.randint(1, 30)
    layouts = (f"Shop {shop}, G/F, {street}, {district}", f"{street} (Shop {shop}), {district}")
    return district, rng.choice(layouts)


def _registration(
    rng: random.Random,
    site: _Site,
    end: datetime,
    nominees: list[str],
    codes: set[str],
    names: set[str],
) -> dict[str, object]:
    """A company at `site`; `codes` and `names` are those already taken."""
    business_type = weighted(rng, _SHELL_TYPES if site.planted else _BUSINESS_TYPES)
    return {
        "registration_no": _unique(codes, lambda: _credit_code(rng, site.district)),
        "company_name": _unique(names, lambda: _company_name(rng, business_type)),
        "registered_address": site.address,
        "district": site.district,
        "business_type": business_type,
        "registered_on": rfc3339(_days_before(rng, end, site.open_days)),
        "legal_representative": rng.choice(nominees) if site.planted else _person(rng),
    }


def _unique(taken: set[str], draw: Callable[[], str]) -> str:
    while (value := draw()) in taken:
        pass
    taken.add(value)
    return value


def _credit_code(rng: random.Random, district: str) -> str:
    """An 18-character code whose last character checks the other 17 (GB 32100)."""
    body = "91" + _DIVISION_CODES[district] + "".join(rng.choices(_CODE_CHARS, k=9))
    total = sum(
        _CODE_CHARS.index(char) * weight for char, weight in zip(body, _CODE_WEIGHTS, strict=True)
    )
    return body + _CODE_CHARS[-total % 31]


def _company_name(rng: random.Random, business_type: str) -> str:
    return f"Guangzhou {_brand(rng)} {rng.choice(_TRADE_NAMES[business_type])} Co., Ltd."


def _brand(rng: random.Random) -> str:
    return rng.choice(_SYLLABLES) + rng.choice(_SECOND_SYLLABLES)


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_SURNAMES)} {rng.choice(_GIVEN_NAMES)}"


def _days_before(rng: random.Random, end: datetime, days: int) -> datetime:
    """A whole-second moment in the `days` days before `end`, strictly before it."""
    return end.replace(microsecond=0) - timedelta(seconds=rng.randint(1, days * _DAY))

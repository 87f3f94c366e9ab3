"""Invented Chinese number plates, with repeat offenders.

A standard plate is a province character, a city letter, the printed middle dot and
five digits and letters (no I or O, at most two letters), e.g. `粤A·3K7Q2`; a
new-energy plate has six characters after the dot, starting with D (battery) or F
(hybrid), e.g. `粤A·D12345`. Most plates are Guangzhou's (粤A), some from
elsewhere in Guangdong or from neighbouring provinces.
"""

import random

from connectors.fleet.draws import weighted

PLATE_DOT = "\u00b7"
"""The middle dot printed after a plate's prefix."""

REPEAT_SHARE = 0.15
"""About this share of violations are by a plate seen before."""

_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # I and O are never used
_DIGITS = "0123456789"
_NEW_ENERGY_SHARE = 0.08

# Guangzhou first, then elsewhere in Guangdong, then other provinces.
_PREFIX_WEIGHTS: dict[str, int] = {
    "粤A": 780,
    "粤B": 45,  # Shenzhen
    "粤E": 35,  # Foshan
    "粤S": 30,  # Dongguan
    "粤T": 20,  # Zhongshan
    "粤R": 20,  # Qingyuan
    "粤C": 15,  # Zhuhai
    "湘A": 20,  # Changsha, Hunan
    "桂A": 15,  # Nanning, Guangxi
}


class PlateBook:
    """Issues plates; about 15% are an earlier plate seen again (repeat offenders)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seen: list[str] = []
        self._offenders: list[str] = []
        self._known_offenders: set[str] = set()  # for membership; the list keeps the order

    def next_plate(self) -> str:
        if self._seen and self._rng.random() < REPEAT_SHARE:
            return self._repeat()
        plate = new_plate(self._rng)
        self._seen.append(plate)
        return plate

    def _repeat(self) -> str:
        """Mostly a known offender again; sometimes a first-time repeat."""
        if self._offenders and self._rng.random() < 0.6:
            return self._rng.choice(self._offenders)
        plate = self._rng.choice(self._seen)
        if plate not in self._known_offenders:
            self._offenders.append(plate)
            self._known_offenders.add(plate)
        return plate


def new_plate(rng: random.Random) -> str:
    """A plate such as `粤A·3K7Q2`, or a new-energy plate such as `粤A·D12345`."""
    prefix = weighted(rng, _PREFIX_WEIGHTS)
    serial = _new_energy_serial(rng) if rng.random() < _NEW_ENERGY_SHARE else _serial(rng)
    return f"{prefix}{PLATE_DOT}{serial}"


def _serial(rng: random.Random) -> str:
    """Five digits and letters (no I or O), at most two of them letters."""
    letters = rng.choices((0, 1, 2), weights=(50, 35, 15))[0]
    chars = [rng.choice(_DIGITS) for _ in range(5)]
    for position in rng.sample(range(5), letters):
        chars[position] = rng.choice(_LETTERS)
    return "".join(chars)


def _new_energy_serial(rng: random.Random) -> str:
    """D (battery) or F (hybrid), a digit or letter, then four digits."""
    second = rng.choice(_DIGITS) if rng.random() < 0.7 else rng.choice(_LETTERS)
    return rng.choice("DF") + second + "".join(rng.choices(_DIGITS, k=4))

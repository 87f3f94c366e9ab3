"""Subject keys: what kind of thing a product's subject field names, and the one
written form two products' values are compared in.

Two ledgers seldom write a plate, a phone number or an address the same way
("粤A 12345" and "粤A12345"; "+86 138 0013 8000" and "13800138000"; "Rm 1203,
Bldg 7, 88 Huangpu Ave W" and "88 Huangpu Avenue West, Building 7, Room 1203").
Each kind has a normaliser that maps such spellings to one key; linkage and
cross-checks compare keys, never the raw text.
"""

import re
import unicodedata
from collections.abc import Callable

_SEPARATORS = re.compile(r"[\s\-_.·•・/]+")
_PUNCTUATION = re.compile(r"[^\w\s]+")

# Address words and their one spelling; None drops the word (it adds nothing).
_ADDRESS_WORDS: dict[str, str | None] = {
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "street": "st",
    "lane": "ln",
    "west": "w",
    "east": "e",
    "north": "n",
    "south": "s",
    "middle": "m",
    "building": "bldg",
    "block": "bldg",
    "blk": "bldg",
    "tower": "bldg",
    "room": "unit",
    "rm": "unit",
    "flat": "unit",
    "apt": "unit",
    "apartment": "unit",
    "suite": "unit",
    "floor": "fl",
    "district": None,
    "no": None,
    "number": None,
    "the": None,
}
# A label glued to the number after it: "bldg 7" → "bldg7", so that sorting the
# words cannot move the number to another label.
_LABELS = frozenset({"bldg", "unit", "fl", "ln"})


def plate(value: str) -> str:
    """Upper case, no spaces, dashes or dots: "粤a·123-45" → "粤A12345"."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()


def phone(value: str) -> str:
    """Digits only, without China's country code or a landline's trunk 0:
    "+86 138-0013-8000" → "13800138000"; "+86 20 8888 1234" and "020 8888 1234"
    → "2088881234"."""
    digits = "".join(c for c in unicodedata.normalize("NFKC", value) if c.isdigit())
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) in (10, 11):
            digits = digits[len(prefix) :]
            break
    return digits.removeprefix("0")


def address(value: str) -> str:
    """Lower case words in one spelling, labels joined to their numbers, sorted:
    the order the parts were written in does not matter.
    "Room 1203, Building 7, 88 Huangpu Avenue West" and
    "88 huangpu ave w bldg 7 rm 1203" both → "88 ave bldg7 huangpu unit1203 w"."""
    text = _PUNCTUATION.sub(" ", unicodedata.normalize("NFKC", value).casefold())
    words = [_ADDRESS_WORDS.get(word, word) for word in text.split()]
    kept = [word for word in words if word]
    glued: list[str] = []
    for word in kept:
        if glued and glued[-1] in _LABELS and word.isalnum() and any(c.isdigit() for c in word):
            glued[-1] += word
        else:
            glued.append(word)
    return " ".join(sorted(glued))


def identifier(value: str) -> str:
    """An id number or registration code: upper case, letters and digits only."""
    return "".join(c for c in unicodedata.normalize("NFKC", value) if c.isalnum()).upper()


NORMALISERS: dict[str, Callable[[str], str]] = {
    "plate": plate,
    "phone": phone,
    "address": address,
    "person_id": identifier,
    "company_id": identifier,
}
KINDS = tuple(NORMALISERS)


def normalised(kind: str, value: str) -> str:
    """The key of `value` as a subject of `kind` (one of KINDS)."""
    return NORMALISERS[kind](value)

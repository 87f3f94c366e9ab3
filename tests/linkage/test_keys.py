"""Subject keys: the spellings of one subject meet in one key, and different subjects
never do (a false match would hand over another person's records)."""

import pytest

from exchange.linkage import keys


def same(kind: str, *spellings: str) -> None:
    found = {spelling: keys.normalised(kind, spelling) for spelling in spellings}
    assert len(set(found.values())) == 1, found


def different(kind: str, *subjects: str) -> None:
    found = {subject: keys.normalised(kind, subject) for subject in subjects}
    assert len(set(found.values())) == len(subjects), found


# --- the docstrings' own examples ---------------------------------------------------------------


def test_the_docstring_examples_hold() -> None:
    assert keys.plate("粤a·123-45") == "粤A12345"
    assert keys.phone("+86 138-0013-8000") == "13800138000"
    expected = "88 ave bldg7 huangpu unit1203 w"
    assert keys.address("Room 1203, Building 7, 88 Huangpu Avenue West") == expected
    assert keys.address("88 huangpu ave w bldg 7 rm 1203") == expected


def test_the_module_docstring_spellings_meet() -> None:
    same("plate", "粤A 12345", "粤A12345")
    same("phone", "+86 138 0013 8000", "13800138000")
    same(
        "address",
        "Rm 1203, Bldg 7, 88 Huangpu Ave W",
        "88 Huangpu Avenue West, Building 7, Room 1203",
    )


def test_every_kind_has_a_normaliser() -> None:
    assert keys.KINDS == ("plate", "phone", "address", "person_id", "company_id")
    assert set(keys.NORMALISERS) == set(keys.KINDS)
    assert keys.normalised("person_id", "44010619900101123x") == "44010619900101123X"


# --- plates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "粤A·10001",
        "粤A 10001",
        "粤a10001",
        "粤A-10001",
        "粤A.10001",
        "粤A_10001",
        "粤A/10001",
        "粤A•10001",
        " 粤A  10001 ",
        "粤A\t10001",
        "粤A-100-01",
    ],
)
def test_a_plate_in_any_common_spelling_has_one_key(spelling: str) -> None:
    assert keys.plate(spelling) == "粤A10001"


@pytest.mark.parametrize(
    "spelling",
    [
        "粤Ａ１０００１",  # full-width letters and digits
        "粤Ａ－１０００１",  # full-width hyphen
        "粤Ａ．１０００１",  # full-width full stop
        "粤Ａ\u3000１０００１",  # ideographic space
        "粤Ａ・１０００１",  # katakana middle dot, the full-width form of ･
        "粤A･10001",  # half-width katakana middle dot (NFKC: ・)
    ],
)
def test_a_full_width_plate_is_the_same_plate(spelling: str) -> None:
    assert keys.plate(spelling) == "粤A10001"


def test_different_plates_stay_different() -> None:
    different(
        "plate",
        "粤A·10001",
        "粤A·10002",
        "粤B·10001",
        "京A·10001",
        "粤A·100011",
        "粤A·1000",
        "粤AD·10001",
    )


# --- phone numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "+86-13800138000",
        "86 13800138000",
        "0086 138 0013 8000",
        "008613800138000",
        "(+86) 138.0013.8000",
        "１３８００１３８０００",
        "＋８６ １３８ ００１３ ８０００",
    ],
)
def test_a_mobile_number_in_any_spelling_has_one_key(spelling: str) -> None:
    assert keys.phone(spelling) == "13800138000"


def test_a_country_code_is_only_taken_off_a_whole_number() -> None:
    """An 11-digit number that merely starts with 86 keeps its digits."""
    assert keys.phone("86123456789") == "86123456789"
    assert "86123456789" in keys.phone("0086123456789")


def test_a_landline_with_the_country_code_is_the_same_landline() -> None:
    """Guangzhou's 020 8888 1234 dialled from abroad is +86 20 8888 1234 (the trunk 0
    goes); the docstring promises the number "without China's country code"."""
    same("phone", "020 8888 1234", "+86 20 8888 1234", "0086 20 8888 1234")


def test_different_phone_numbers_stay_different() -> None:
    different(
        "phone",
        "13800138000",
        "13800138001",
        "+86 13900139000",
        "020 8888 1234",
        "8613800138000 1",
    )


# --- addresses ----------------------------------------------------------------------------------


def test_an_address_does_not_depend_on_word_order_or_abbreviations() -> None:
    same(
        "address",
        "Room 1203, Building 7, 88 Huangpu Avenue West, Tianhe District",
        "88 Huangpu Ave W, Bldg 7, Rm 1203, Tianhe",
        "Tianhe, Huangpu Av. West No. 88, Block 7, Flat 1203",
        "ROOM 1203 TOWER 7 NO 88 HUANGPU AVENUE WEST TIANHE",
        "rm. 1203 / blk. 7 / 88, huangpu ave. w., tianhe district",
        "Suite 1203, 88 Huangpu Avenue West, Building 7, Tianhe",
    )
    same("address", "12 Zhongshan Road East, Floor 3", "Fl 3, 12 Zhongshan Rd E")


def test_a_label_keeps_its_own_number() -> None:
    different(
        "address",
        "Building 7 Room 88",
        "Building 88 Room 7",
        "Floor 7 Room 88",
        "Building 7 Floor 88",
    )
    different("address", "88 Huangpu Ave, Bldg 7, Rm 1203", "88 Huangpu Ave, Bldg 1203, Rm 7")
    same("address", "Room 88, Building 7", "Building 7 Room 88", "bldg7 unit88")


def test_a_lane_number_and_a_house_number_do_not_swap() -> None:
    """No. 12 in Lane 5 and No. 5 in Lane 12 of one road are two homes (弄/巷
    numbering is everyday in Guangzhou)."""
    different("address", "No. 12, Lane 5, Huangpu Rd", "No. 5, Lane 12, Huangpu Rd")


def test_a_full_width_address_is_the_same_address() -> None:
    same(
        "address",
        "Ｒｏｏｍ　１２０３，Ｂｕｉｌｄｉｎｇ　７，８８　Ｈｕａｎｇｐｕ　Ａｖｅ　Ｗ",
        "Room 1203, Building 7, 88 Huangpu Ave W",
    )


def test_different_addresses_stay_different() -> None:
    different(
        "address",
        "88 Huangpu Ave W, Bldg 7, Rm 1203",
        "88 Huangpu Ave E, Bldg 7, Rm 1203",
        "88 Huangpu Ave W, Bldg 7, Rm 1204",
        "88 Huangpu Ave W, Bldg 8, Rm 1203",
        "86 Huangpu Ave W, Bldg 7, Rm 1203",
        "88 Huangpu Rd W, Bldg 7, Rm 1203",
        "88 Zhongshan Ave W, Bldg 7, Rm 1203",
    )


# --- identifiers --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["person_id", "company_id"])
def test_an_identifier_keeps_only_its_letters_and_digits(kind: str) -> None:
    same(kind, "44010619900101123X", "440106 19900101 123x", "440106-19900101-123X")
    same(kind, "４４０１０６１９９００１０１１２３ｘ", "44010619900101123X")
    same(kind, "91440101-MA59ABCD1X", "91440101MA59ABCD1X", "９１４４０１０１ ｍａ５９ａｂｃｄ１ｘ")
    different(kind, "44010619900101123X", "44010619900101124X", "4401061990010112X")

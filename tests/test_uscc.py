"""USCC checking (GB 32100-2015), legacy registration numbers and Excel-mangled cells."""

from __future__ import annotations

import itertools
import random

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from core.uscc import ALPHABET, WEIGHTS, check_char, is_valid_uscc, make_uscc, validate_uscc
from tests import factories


@pytest.mark.parametrize("code", ["91330424MA28AQAQXU", "91512081MA62K0260E"])
def test_published_valid_examples(code: str) -> None:
    check = validate_uscc(code)
    assert check.ok and not check.is_legacy and check.code == code and check.reason == ""


def test_standard_invalid_example_names_the_expected_check_char() -> None:
    check = validate_uscc("91350100M000100Y4Z")
    assert not check.ok
    assert "校验码错误" in check.reason and "“Z”" in check.reason
    assert f"应为 {check_char('91350100M000100Y4')}" in check.reason


def test_weights_are_powers_of_three_mod_31() -> None:
    assert WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def test_valid_code_that_looks_like_scientific_notation_is_accepted() -> None:
    # regression: 913304243E80000681 was reported as an Excel-mangled number (digits E digits)
    code = make_uscc("913304243E8000068")
    assert code == "913304243E80000681"
    assert validate_uscc(code).ok and not validate_uscc(code).excel_mangled
    mistyped = validate_uscc("913304243E80000682")
    assert not mistyped.excel_mangled and mistyped.reason == "校验码错误：应为 1，实际为 2"


def test_wrong_check_char_reports_expected_and_actual() -> None:
    check = validate_uscc("91330424MA28AQAQX0")
    assert not check.ok
    assert check.reason == "校验码错误：应为 U，实际为 0"


def test_every_single_character_change_is_caught() -> None:
    code = "91512081MA62K0260E"
    for pos in range(18):
        for ch in ALPHABET:
            if ch != code[pos]:
                assert not validate_uscc(code[:pos] + ch + code[pos + 1 :]).ok, (pos, ch)


def test_normalises_case_whitespace_and_full_width() -> None:
    check = validate_uscc(" ９１３３０４２４ｍａ28aqaq xu\u3000")
    assert check.ok and check.code == "91330424MA28AQAQXU"


def test_illegal_character_with_position() -> None:
    check = validate_uscc("9133O424MA28AQAQXU")
    assert not check.ok and "第 5 位“O”" in check.reason


@pytest.mark.parametrize(
    ("value", "length"), [("91330424MA28AQAQ", 16), ("1234567890", 10), ("91330424MA28AQAQXU1", 19)]
)
def test_wrong_length(value: str, length: int) -> None:
    check = validate_uscc(value)
    assert not check.ok and f"实际为 {length} 位" in check.reason


@pytest.mark.parametrize(
    "value",
    [
        "9.13304E+17",
        "9.1330424E+17",
        "9.1330424e17",
        9.1330424e17,
        913304240000000000,
        "913304240000000000",
    ],
)
def test_excel_mangled_numbers_are_reported_not_fixed(value: object) -> None:
    check = validate_uscc(value)
    assert not check.ok and check.excel_mangled
    assert check.reason.startswith("疑似被 Excel 转成数字的代码")


@pytest.mark.parametrize("value", ["330424000012345", 330424000012345, 330424000012345.0])
def test_fifteen_digit_registration_number_is_a_legacy_id(value: object) -> None:
    check = validate_uscc(value)
    assert check.ok and check.is_legacy and check.code == "330424000012345"
    assert not is_valid_uscc(value)


def test_legacy_number_must_be_digits() -> None:
    check = validate_uscc("33042400001234A")
    assert not check.ok and "第 15 位是“A”" in check.reason


@pytest.mark.parametrize("value", [None, "", "   "])
def test_empty(value: object) -> None:
    assert validate_uscc(value).reason == "统一社会信用代码为空"


def test_make_uscc_round_trips_random_bodies() -> None:
    rng = random.Random(32100)
    for _ in range(500):
        body = "".join(rng.choice(ALPHABET) for _ in range(17))
        code = make_uscc(body)
        assert code[:17] == body and is_valid_uscc(code)


def test_check_char_rejects_bad_bodies() -> None:
    with pytest.raises(ValueError):
        check_char("91330424MA28AQAQ")
    with pytest.raises(ValueError):
        check_char("91330424MA28AQAQI")


async def test_the_factory_s_targets_stay_valid_deep_into_a_long_run(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test worker of the full run passes factory serial 10,000: its next targets were
    numbered past the USCC's 9 digits, and check_char refused the 18-character body in the
    setup of whichever tests came then (40 failures in CI, none alone)."""
    monkeypatch.setattr(factories, "_serial", itertools.count(10_838))
    made = await factories.targets(session, 3)
    assert all(is_valid_uscc(t.uscc) for t in made)

"""Unified social credit codes (统一社会信用代码, GB 32100-2015) and legacy registration numbers.

An 18-character code is 17 body characters plus a check character. Every character comes from
ALPHABET (value = index, 0–30); the weight of position i (1-based) is 3^(i-1) mod 31 and the
check value is (31 − Σ value × weight mod 31) mod 31. A target without a USCC may be identified
by its 15-digit registration number (注册号); that id is accepted and marked legacy.

Spreadsheets often hold codes that Excel turned into numbers (9.13304E+17); the digits lost that
way cannot be recovered, so such values are reported as mangled and never "repaired".
"""

from __future__ import annotations

import re
import unicodedata
from operator import mul
from typing import NamedTuple

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES = {ch: i for i, ch in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
USCC_LENGTH = 18
LEGACY_LENGTH = 15
# Excel keeps 15 significant digits, so an integer of exactly 15 digits survives intact.
EXCEL_DIGITS = 15

# Needs a decimal point or a signed exponent, so a mistyped code like 913304243E80000682 is
# reported as a wrong check character rather than as an Excel number.
_SCIENTIFIC = re.compile(r"[+-]?(\d+\.\d+E[+-]?\d+|\d+E[+-]\d+)")
_PLAIN = re.compile(f"[{ALPHABET}]{{18}}")
_DIGITS = frozenset("0123456789")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_EXCEL_HINT = "，末尾数字已丢失、无法还原；请把该列设为“文本”格式后重新填写或导出"


class UsccCheck(NamedTuple):
    """Outcome of checking one cell. `code` is the normalised id; store it only when `ok`.

    A NamedTuple (immutable, cheap to build): imports check 100,000 codes in one go.
    """

    raw: str
    code: str
    ok: bool
    is_legacy: bool = False
    excel_mangled: bool = False
    reason: str = ""  # Chinese, empty when ok


def normalise(text: str) -> str:
    """Upper-case, half-width, without whitespace or the leading apostrophe Excel uses for text."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    text = "".join(text.split()).upper()
    return text.removeprefix("'")


def check_char(body17: str) -> str:
    """The check character for 17 body characters (raises ValueError on a bad body)."""
    body = normalise(body17)
    if len(body) != USCC_LENGTH - 1:
        raise ValueError(f"body must have 17 characters, got {len(body)}")
    try:
        return _check_char(body)
    except KeyError as err:
        raise ValueError(f"character {err.args[0]!r} is not in the USCC alphabet") from None


def _check_char(body: str) -> str:
    total = sum(map(mul, map(VALUES.__getitem__, body), WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def make_uscc(body17: str) -> str:
    """A valid USCC from 17 body characters (synthetic data, tests, the demo)."""
    return normalise(body17) + check_char(body17)


def is_valid_uscc(value: object) -> bool:
    check = validate_uscc(value)
    return check.ok and not check.is_legacy


def validate_uscc(value: object) -> UsccCheck:
    """Check a cell from a file or a chat message: a USCC, a legacy 15-digit number, or an error."""
    if isinstance(value, bool):
        return _fail(str(value), "", "统一社会信用代码不能是“是/否”值")
    if isinstance(value, int | float):
        return _check_number(value)
    raw = "" if value is None else str(value)
    if _PLAIN.fullmatch(raw) and _check_char(raw[:17]) == raw[17]:  # the usual, tidy cell
        return UsccCheck(raw=raw, code=raw, ok=True)
    code = normalise(raw)
    if not code:
        return _fail(raw, code, "统一社会信用代码为空")
    if _is_valid_18(code):  # first: a real code such as 913304243E80000681 looks "scientific"
        return UsccCheck(raw=raw, code=code, ok=True)
    if _SCIENTIFIC.fullmatch(code):
        return _fail(
            raw, code, f"疑似被 Excel 转成数字的代码（{raw.strip()}）{_EXCEL_HINT}", mangled=True
        )
    if len(code) == LEGACY_LENGTH:
        return _check_legacy(raw, code)
    if len(code) != USCC_LENGTH:
        return _fail(
            raw,
            code,
            f"长度应为 18 位（统一社会信用代码）或 15 位（旧注册号），实际为 {len(code)} 位",
        )
    bad = [(i, ch) for i, ch in enumerate(code, start=1) if ch not in VALUES]
    if bad == [(USCC_LENGTH, code[-1])]:
        return _fail(
            raw,
            code,
            f"校验码错误：应为 {_check_char(code[:17])}，实际为“{code[-1]}”"
            "（该字符不是合法的校验码）",
        )
    if bad:
        listed = "、".join(f"第 {i} 位“{ch}”" for i, ch in bad)
        return _fail(
            raw, code, f"含非法字符：{listed}（代码只用数字和除 I、O、S、V、Z 以外的大写字母）"
        )
    expected = _check_char(code[:17])
    if _digits_only(code) and code.endswith("000"):
        # Excel printed the number in full after rounding it to 15 significant digits.
        return _fail(raw, code, f"疑似被 Excel 转成数字的代码（{code}）{_EXCEL_HINT}", mangled=True)
    return _fail(raw, code, f"校验码错误：应为 {expected}，实际为 {code[17]}")


def _is_valid_18(code: str) -> bool:
    return bool(_PLAIN.fullmatch(code)) and _check_char(code[:17]) == code[17]


def _check_number(value: int | float) -> UsccCheck:
    """A numeric spreadsheet cell: only an exact 15-digit integer (legacy number) survives Excel."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 10**EXCEL_DIGITS:
        value = int(value)
    if isinstance(value, int) and len(str(value)) == LEGACY_LENGTH:
        return _check_legacy(str(value), str(value))
    shown = format(value, ".15G") if isinstance(value, float) else str(value)
    return _fail(shown, shown, f"疑似被 Excel 转成数字的代码（{shown}）{_EXCEL_HINT}", mangled=True)


def _check_legacy(raw: str, code: str) -> UsccCheck:
    if not _digits_only(code):
        pos, ch = next((i, c) for i, c in enumerate(code, start=1) if c not in _DIGITS)
        return _fail(raw, code, f"15 位旧注册号应全部为数字，第 {pos} 位是“{ch}”")
    return UsccCheck(raw=raw, code=code, ok=True, is_legacy=True)


def _digits_only(code: str) -> bool:
    return all(c in _DIGITS for c in code)


def _fail(raw: str, code: str, reason: str, *, mangled: bool = False) -> UsccCheck:
    return UsccCheck(raw=raw, code=code, ok=False, excel_mangled=mangled, reason=reason)

"""Setup: the example rows of the import templates (core.sheets writes them), kept here so an
import recognises one left in a file and refuses it: a forgotten example row renamed a county's
stored officer SJ001 to the example's 张三 and added the fictitious 某县恒达餐饮有限公司.

The examples of departments and items are real (a county's 县市场监督管理局, 001's 食品经营许可
情况检查): the same row in a county's own file is its data, so only the fictitious ones are
refused (REFUSED).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.imports.reading import Column, Row, RowError

YEAR = "{year}"  # the template's year; an example of any year is recognised
EXAMPLE_USCC = "91330424MA28AQAQXU"

# per importer: its example rows, field → value (a field left out is blank)
EXAMPLES: dict[str, list[dict[str, str]]] = {
    "departments": [
        {
            "code": "SJ",
            "name": "县市场监督管理局",
            "short_name": "市场监管",
            "is_market_regulator": "是",
            "counterpart": "市市场监督管理局",
        },
        {
            "code": "WJ",
            "name": "县卫生健康局",
            "short_name": "卫健",
            "is_market_regulator": "否",
            "counterpart": "市卫生健康委员会",
        },
    ],
    "items": [
        {
            "department": "SJ",
            "code": "SJ-01",
            "name": "食品经营许可情况检查",
            "category": "重点",
            "target_scope": "餐饮服务、食品销售",
            "method": "实地检查、书面检查",
            "basis": "《中华人民共和国食品安全法》第三十五条",
        },
        {
            "department": "WJ",
            "code": "WJ-01",
            "name": "公共场所卫生检查",
            "category": "一般",
            "target_scope": "住宿、餐饮服务",
            "method": "实地检查",
            "basis": "《公共场所卫生管理条例》",
            "ratio_cap": "5%",
        },
    ],
    "inspectors": [
        {
            "name": "张三",
            "department": "SJ",
            "cert_no": "ZF33040001",
            "code": "SJ001",
            "expertise": "食品、特种设备",
            "region": "城关镇",
            "mobile": "13800000000",
            "roles": "执法检查人员、联络员",
            "on_duty": "在岗",
        }
    ],
    "targets": [
        {
            "uscc": EXAMPLE_USCC,
            "name": "某县恒达餐饮有限公司",
            "kind": "企业",
            "industry": "餐饮服务",
            "region": "城关镇",
            "address": "某县城关镇人民路1号",
            "status": "存续",
            "risk_level": "B",
        }
    ],
    "exclusions": [
        {
            "uscc": EXAMPLE_USCC,
            "year": YEAR,
            "department": "SJ",
            "source": "市市场监督管理局",
            "reason": "市级双随机抽查已检查",
        }
    ],
    "conflicts": [{"officer": "SJ001", "uscc": EXAMPLE_USCC, "reason": "本人配偶在该企业任职"}],
    "plan": [
        {
            "code": f"JH-{YEAR}-01",
            "title": f"{YEAR}年度餐饮行业部门联合双随机抽查",
            "lead": "SJ",
            "participants": "WJ",
            "items": "SJ-01、WJ-01",
            "scope": "餐饮服务",
            "ratio": "5%",
            "month": "6",
        }
    ],
}
# per refused importer: the columns that make a row its example — a file without one of them
# holds no example (an exclusion file of 统一社会信用代码 and 年度 alone naming the example's
# code is the county's data), while one without another of the example's columns still does
# (a template whose 手机 column the office deleted, its 张三 SJ001 forgotten)
IDENTIFYING = {
    "inspectors": ("name", "code"),
    "targets": ("uscc", "name"),
    "exclusions": ("uscc", "reason"),
    "conflicts": ("officer", "uscc", "reason"),
    "plan": ("code", "title"),
}
REFUSED = frozenset(IDENTIFYING)


def example_rows(kind: str, columns: Sequence[Column], year: int) -> list[list[str]]:
    """The template's example rows, in column order."""
    return [
        [example.get(c.field, "").replace(YEAR, str(year)) for c in columns]
        for example in EXAMPLES[kind]
    ]


def _pattern(value: str) -> re.Pattern[str]:
    return re.compile(re.escape(value).replace(re.escape(YEAR), r"\d{4}"))


_PATTERNS = {
    kind: [{f: _pattern(v) for f, v in example.items()} for example in EXAMPLES[kind]]
    for kind in REFUSED
}


def example_error(kind: str, row: Row) -> RowError | None:
    """Why the row is refused when it is one of the template's fictitious example rows: the
    file has the example's IDENTIFYING columns, each column of the file the example fills
    holds the example's value, and the others are blank (a real row sharing the example's code
    alone is not refused)."""
    fields = list(row.layout.where)
    for example in _PATTERNS.get(kind, ()):
        if all(row.layout.has(f) for f in IDENTIFYING[kind]) and all(
            example[f].fullmatch(row.get(f)) if f in example else not row.get(f) for f in fields
        ):
            return RowError(
                row.line,
                row.layout.header[fields[0]],
                "这是模板自带的示例行（示例数据，不是本县的），请删除该行后再导入",
            )
    return None

"""Setup and planning: reading office spreadsheets, shared by every importer (core.imports.*):
the file as rows (CSV in any of the encodings offices save, or .xlsx), headers
matched to columns by their Chinese names or English aliases, and one data row being checked
with every problem collected, each named by the line number the spreadsheet shows; ratios as
offices write them.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import String, Table

from core.textfiles import binary_kind, decode_text
from core.uscc import validate_uscc

HEADER_SEARCH_ROWS = 10  # a title row or two above the header is common in office files
_SPLIT = re.compile(r"[、,，;；|\r\n]+")
TRAILING_NOTE = re.compile(r"\(.*\)$")  # "存续（在营）": a note after the value (NFKC'd)


@dataclass(frozen=True)
class RowError:
    line: int  # as the spreadsheet shows it (header = its own row number)
    column: str  # the header as written in the file
    reason: str  # Chinese


class FileProblem(Exception):
    """The file as a whole cannot be imported; the message is Chinese."""


# ---------------------------------------------------------------- columns


@dataclass(frozen=True)
class Cells:
    """What a typed .xlsx cell of a column may hold (CSV cells are all text); checked for every
    importer by Row.check_cells. Excel turns what a clerk types into dates and numbers: a date
    in a text column, or a number in an identifier's, is no longer what was typed."""

    dates: bool = False  # a date cell is a value the importer reads (计划月份)
    numbers: bool = True  # any number is taken as the text it shows (names, ratios, years)
    # with numbers=False: the whole numbers whose digits are the identifier beyond doubt (no
    # leading 0 can have been dropped); every other number is refused
    whole: re.Pattern[str] | None = None


TEXT = Cells()
VALUE = Cells(dates=True)
CODE = Cells(numbers=False)  # 执法证号, 人员编号, codes, accounts: "0123" became 123
MOBILE = Cells(numbers=False, whole=re.compile(r"1\d{10}"))  # a mobile number never starts 0
_DATE_CELLS = (dt.date, dt.time, dt.timedelta)  # openpyxl's datetime is a date


@dataclass(frozen=True)
class Column:
    field: str
    aliases: tuple[str, ...]  # in priority order: the first non-empty cell wins
    required: bool = False
    cells: Cells = TEXT

    @property
    def label(self) -> str:
        """The Chinese header, named in messages when the file does not have the column."""
        return self.aliases[0]


def header_key(text: object) -> str:
    """Header comparison key: half-width, lower-case, no spaces, no '*' or trailing '(…)' note."""
    key = unicodedata.normalize("NFKC", "" if text is None else str(text)).lower()
    key = "".join(key.split()).replace("*", "").replace("\ufeff", "")
    return TRAILING_NOTE.sub("", key) or key


# 注册号 comes after the USCC headers: a file with both uses the USCC where it has one.
USCC_COLUMN = Column(
    "uscc",
    ("统一社会信用代码", "社会信用代码", "信用代码", "uscc", "注册号", "registration_no"),
    required=True,
    # Excel keeps 15 digits exactly: an old 注册号 (it starts with a region code) survives
    cells=Cells(numbers=False, whole=re.compile(r"[1-9]\d{14}")),
)


# ---------------------------------------------------------------- reading files


@dataclass
class Sheet:
    """A file's header and non-blank data rows, each with its spreadsheet line number."""

    header_line: int
    headers: list[str]
    rows: list[tuple[int, list[Any]]]
    sha256: str
    # the worksheet read, named in messages when the workbook has several ("" for CSV)
    sheet_name: str = ""
    # a CSV read as GB18030 for want of UTF-8: any other encoding (Big5) reads as garble
    legacy_encoding: bool = False


def read_sheet(path: Path, columns: Sequence[Column]) -> Sheet:
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm") and data.strip() and binary_kind(data) is None:
        raise FileProblem(f"文件名是 {path.suffix}，内容却是文本（如 CSV）：请把扩展名改为 .csv")
    sheet_name = ""
    legacy_encoding = False
    merged: list[tuple[int, int, int, str]] = []
    if suffix in (".xlsx", ".xlsm"):
        sheet_name, lines, merged = _xlsx_lines(data, columns)
        filled = [(n, cells) for n, cells in lines if any(cell_text(c) for c in cells)]
    elif suffix in (".csv", ".txt", ".tsv"):
        if (kind := binary_kind(data)) is not None:
            raise FileProblem(f"文件名是 {path.suffix}，内容却是{kind}：请按实际格式改正扩展名")
        # CSV cells are all strings: one C-level join per row tells a blank row
        filled = [(n, cells) for n, cells in _csv_lines(_decode(data)) if "".join(cells).strip()]
        legacy_encoding = not data.startswith((b"\xff\xfe", b"\xfe\xff")) and not _is_utf8(data)
    elif suffix == ".xls":
        raise FileProblem("不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 CSV 后再导入")
    else:
        raise FileProblem(f"不支持的文件类型“{path.suffix or '无扩展名'}”，请使用 CSV 或 .xlsx")
    if not filled:
        raise FileProblem(f"{in_sheet(sheet_name)}是空的，没有表头和数据")
    required = {header_key(a) for c in columns if c.required for a in c.aliases}
    head_at = next(
        (
            i
            for i, (_, cells) in enumerate(filled[:HEADER_SEARCH_ROWS])
            if required & {header_key(c) for c in cells}
        ),
        0,
    )
    header_line, header_cells = filled[head_at]
    _refuse_merged(sheet_name, header_line, [cell_text(c) for c in header_cells], merged)
    return Sheet(
        header_line=header_line,
        headers=[cell_text(c) for c in header_cells],
        rows=filled[head_at + 1 :],
        sha256=hashlib.sha256(data).hexdigest(),
        sheet_name=sheet_name,
        legacy_encoding=legacy_encoding,
    )


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# said when a CSV not in UTF-8 lacks a required column: its header may be garble
ENCODING_HINT = (
    "若读到的表头是乱码，是文件的文字编码未被识别：可导入的编码为 UTF-8、UTF-16"
    "（Excel“Unicode 文本”）和 GBK/GB18030，繁体 Big5 等其他编码请在 Excel 中"
    "另存为“CSV UTF-8”后再导入"
)


def in_sheet(sheet_name: str) -> str:
    """How a message names what was read: the worksheet, or the file."""
    return f"工作表“{sheet_name}”" if sheet_name else "文件"


def _decode(data: bytes) -> str:
    try:
        return decode_text(data)
    except UnicodeDecodeError:
        raise FileProblem("无法识别文件编码，请另存为“CSV UTF-8”或 .xlsx 后再导入") from None


def _csv_lines(text: str) -> list[tuple[int, list[Any]]]:
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delimiter = max(",\t;", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    # Record numbers, not physical lines: a cell with a line break is still one spreadsheet row.
    return list(enumerate(reader, start=1))


DATA_SHEET = "数据"  # the data sheet of every template (core.sheets)


MergedRange = tuple[int, int, int, str]  # first row, last row, first column (1-based), "D2:D6"
_MERGE_REF = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Za-z]+\d+:[A-Za-z]+\d+)"')


def _xlsx_lines(
    data: bytes, columns: Sequence[Column]
) -> tuple[str, list[tuple[int, list[Any]]], list[MergedRange]]:
    """The data sheet's name (when the workbook has several), its lines and its merged ranges:
    the sheet named 数据, else the first whose header has every required column, else the first
    (a workbook with 填写说明 before 数据 read the notes). Another sheet with that header and rows
    under it is refused: one sheet per town lost every town but the first."""
    from openpyxl import load_workbook  # imported here: only XLSX imports pay for it

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many kinds for a broken or foreign file
        raise FileProblem(
            f"无法读取 Excel 文件（{type(err).__name__}），请确认是 .xlsx 格式"
        ) from None
    try:
        sheets = wb.worksheets
        if not sheets:
            raise FileProblem("Excel 文件中没有工作表（只有图表），请把数据放在工作表中")
        ws = next((w for w in sheets if w.title.strip() == DATA_SHEET), None)
        if ws is None and len(sheets) > 1:
            ws = next((w for w in sheets if _has_header(w, columns)), None)
        ws = ws or sheets[0]
        if len(sheets) > 1:
            holding = [w.title for w in sheets if _has_header(w, columns, with_rows=True)]
            if len(holding) > 1 or (holding and holding[0] != ws.title):
                named = "“" + "”“".join(dict.fromkeys([ws.title, *holding])) + "”"
                raise FileProblem(
                    f"工作簿中有多张工作表都有数据：{named}；一次只导入一张工作表，其余的会被漏掉。"
                    "请把数据合并到一张工作表（表头相同，逐行接在下面），"
                    "或把每张工作表另存为单独的文件分别导入"
                )
        ws.reset_dimensions()  # some generators write a wrong sheet size; read what is there
        lines = [(n, list(row)) for n, row in enumerate(ws.iter_rows(values_only=True), start=1)]
        return (ws.title if len(sheets) > 1 else ""), lines, _merged_ranges(data, ws)
    finally:
        wb.close()


def _merged_ranges(data: bytes, ws: Any) -> list[MergedRange]:
    """The sheet's merged cells: a read-only worksheet does not give them, so they are read from
    the sheet's own XML part (its <mergeCell ref="…"/> elements)."""
    from openpyxl.utils.cell import range_boundaries

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            xml = zf.read(ws._worksheet_path)  # the part openpyxl itself reads the rows from
    except (KeyError, zipfile.BadZipFile, AttributeError):
        return []
    found = []
    for ref in _MERGE_REF.findall(xml):
        text = ref.decode("ascii").upper()
        min_col, min_row, _, max_row = range_boundaries(text)
        found.append((int(min_row or 0), int(max_row or 0), int(min_col or 0), text))
    return found


MERGED_SHOWN = 5  # merged ranges a refusal names before it counts the rest


def _refuse_merged(
    sheet_name: str, header_line: int, headers: list[str], merged: list[MergedRange]
) -> None:
    """Refuse cells merged over data rows: only the first row of a merge holds the value, the
    others read as blank (行业 merged D2:D6 left four targets without 行业). Merges in a title or
    a grouped header above the data are fine."""
    bad = sorted(m for m in merged if m[1] > header_line)
    if not bad:
        return
    shown = "、".join(
        f"第 {first}–{last} 行（{headers[col - 1] + ' ' if 0 < col <= len(headers) else ''}{ref}）"
        if last > first
        else f"第 {first} 行（{ref}）"
        for first, last, col, ref in bad[:MERGED_SHOWN]
    )
    more = f" 等 {len(bad)} 处" if len(bad) > MERGED_SHOWN else ""
    raise FileProblem(
        f"{in_sheet(sheet_name)}的数据行中有合并单元格：{shown}{more}。合并后只有第一行有内容，"
        "其余行会被当作空白。请取消合并，并在每一行填上内容后再导入"
    )


def _has_header(ws: Any, columns: Sequence[Column], *, with_rows: bool = False) -> bool:
    """Whether one of the sheet's first rows holds every required column (and, `with_rows`, a
    non-blank row follows it)."""
    wanted = [{header_key(a) for a in c.aliases} for c in columns if c.required]
    ws.reset_dimensions()
    seen = 0
    header = False
    for row in ws.iter_rows(values_only=True):
        keys = {header_key(c) for c in row if c is not None}
        if not keys - {""}:
            continue
        if header:
            return True  # a row under the header
        if all(keys & aliases for aliases in wanted):
            if not with_rows:
                return True
            header = True
            continue
        seen += 1
        if seen >= HEADER_SEARCH_ROWS:
            return False
    return False


def cell_text(value: Any) -> str:
    """A cell as the text a person sees in it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return (
            str(int(value)) if value.is_integer() and abs(value) < 1e15 else format(value, ".15G")
        )
    if isinstance(value, dt.datetime):  # what openpyxl gives for a date cell
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    return str(value).strip()


def nfkc(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


# names as a clerk expects them stored: spaces typed by mistake gone, the name itself kept
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))  # zero-width marks
_SPACE_RUN = re.compile(r"\s+")  # any width: ASCII, full-width (U+3000), no-break …
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\uff21-\uff3a\uff41-\uff5a]")


def person_name(text: str) -> str:
    """A person's name: a Chinese name has no spaces (冯　刚 → 冯刚); one with Latin letters
    (John Smith) keeps one ASCII space between its words."""
    text = text.translate(_INVISIBLE).strip()
    return _SPACE_RUN.sub(" ", text) if _LATIN.search(text) else "".join(text.split())


def entity_name(text: str) -> str:
    """A market entity's name: its words may be English (某县 ABC Trading 有限公司), so
    each run of spaces of any width becomes one ASCII space, none at the ends."""
    return _SPACE_RUN.sub(" ", text.translate(_INVISIBLE)).strip()


# ---------------------------------------------------------------- row access


class Layout:
    """Where each field's cells are in this file, and which importer reads it (`kind`, whose
    template's example rows are refused: core.imports.examples)."""

    def __init__(self, sheet: Sheet, columns: Sequence[Column], kind: str = "") -> None:
        self.kind = kind
        keys = [header_key(h) for h in sheet.headers]
        self.cells = {c.field: c.cells for c in columns}
        self.where: dict[str, list[int]] = {}
        self.header: dict[str, str] = {}
        used: set[int] = set()
        for col in columns:
            idxs = [i for a in col.aliases for i, k in enumerate(keys) if k == header_key(a)]
            if idxs:
                self.where[col.field] = idxs
                self.header[col.field] = sheet.headers[idxs[0]]
                used.update(idxs)
            else:
                self.header[col.field] = col.label
        self.missing = [c for c in columns if c.required and c.field not in self.where]
        self.field_at = {i: f for f, idxs in self.where.items() for i in idxs}
        self.ignored = [h for i, h in enumerate(sheet.headers) if h and i not in used]

    def has(self, field_name: str) -> bool:
        return field_name in self.where


class Row:
    """One data row being checked; collects every problem instead of stopping at the first."""

    __slots__ = ("cells", "errors", "layout", "line", "texts")

    def __init__(self, layout: Layout, line: int, cells: list[Any]) -> None:
        self.layout, self.line, self.cells = layout, line, cells
        self.texts = [c.strip() if type(c) is str else cell_text(c) for c in cells]
        self.errors: list[RowError] = []

    def raw(self, field_name: str) -> Any:
        """The cell itself (a number stays a number): the first non-blank of the field's columns."""
        for i in self.layout.where.get(field_name, ()):
            if i < len(self.texts) and self.texts[i]:
                return self.cells[i]
        return None

    def get(self, field_name: str) -> str:
        """The field's text as a person sees it; '' when blank or the column is absent."""
        for i in self.layout.where.get(field_name, ()):
            if i < len(self.texts) and self.texts[i]:
                return self.texts[i]
        return ""

    def text(self, field_name: str, max_len: int, clean: Callable[[str], str] | None = None) -> str:
        """The field's text (made as stored by `clean`), refused when too long."""
        value = self.get(field_name)
        if clean is not None:
            value = clean(value)
        if len(value) > max_len:
            self.error(field_name, f"内容过长：最多 {max_len} 个字，实际 {len(value)} 个字")
        return value

    def error(self, field_name: str, reason: str) -> None:
        self.errors.append(RowError(self.line, self.layout.header[field_name], reason))

    def check_cells(self) -> None:
        """Refuse the cells Excel made into dates or numbers where the column holds text or an
        identifier (Cells); such a cell's reason replaces what the importer made of its text
        (a 部门编码 "2026-01-02" is not a badly typed code)."""
        for i, value in enumerate(self.cells):
            # a CSV row is all text: one type test per cell
            if type(value) is str:
                if "+" in value and (reason := _scientific_problem(self, i, value)):
                    self._replace_error(self.layout.field_at[i], reason)
                continue
            if value is None or type(value) is bool:
                continue
            field_name = self.layout.field_at.get(i)
            if field_name is None or self.raw(field_name) is not value:  # not the cell read
                continue
            if reason := _cell_problem(value, self.layout.cells[field_name]):
                self._replace_error(field_name, reason)

    def _replace_error(self, field_name: str, reason: str) -> None:
        column = self.layout.header[field_name]
        self.errors = [e for e in self.errors if e.column != column]
        self.error(field_name, reason)


_REFILL = "请把该列设为“文本”格式后按原样重新填写"
# what Excel writes into a CSV for a long number it showed as 3.3E+07 (a USCC never has "+")
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:\.\d*)?[eE]\+\d+")


def _scientific_problem(row: Row, i: int, text: str) -> str:
    """Why a text cell of an identifier column is no identifier: Excel saved the number it
    showed in scientific notation into the CSV ("" when it is not that)."""
    field_name = row.layout.field_at.get(i)
    # a USCC's own check (core.uscc) already names this cause
    if field_name in (None, "uscc") or row.layout.cells[field_name].numbers:
        return ""
    if row.raw(field_name) is not text:  # not the cell read
        return ""
    if not _SCIENTIFIC.fullmatch(nfkc(text)):
        return ""
    return f"疑似被 Excel 转成科学计数法（{text.strip()}），原来的号码已无法还原；{_REFILL}"


def _cell_problem(value: Any, cells: Cells) -> str:
    """Why a typed cell cannot be the column's text ("" when it can)."""
    if isinstance(value, _DATE_CELLS):
        if cells.dates:
            return ""
        return f"疑似被 Excel 转成日期（{cell_text(value)}），原来填写的内容已无法确定；{_REFILL}"
    if cells.numbers or not isinstance(value, int | float):
        return ""
    exact = isinstance(value, int) or (value.is_integer() and abs(value) < 10**15)
    if not exact:
        return f"疑似被 Excel 转成数字（{format(value, '.15G')}），原来的号码已无法还原；{_REFILL}"
    digits = str(int(value))
    if cells.whole is not None and cells.whole.fullmatch(digits):
        return ""
    return (
        f"疑似被 Excel 转成数字（{digits}）：号码开头的 0 等可能已被去掉，无法确定原样；{_REFILL}"
    )


def column_lengths(table: Table) -> dict[str, int]:
    """Column widths, checked here so PostgreSQL never refuses a row that SQLite would accept."""
    return {
        c.name: int(c.type.length) for c in table.c if isinstance(c.type, String) and c.type.length
    }


def split_multi(text: str) -> list[str]:
    return [p.strip() for p in _SPLIT.split(text) if p.strip()]


def check_uscc(row: Row) -> tuple[str, bool]:
    check = validate_uscc(row.raw("uscc"))
    if not check.ok:
        row.error("uscc", check.reason)
    return check.code, check.is_legacy


# ratios as offices write them (item caps, the annual plan)


def parse_ratio(text: str) -> Decimal | None:
    """'5%', '5％', '0.05' → Decimal('0.05'); None when it is not a ratio in (0, 1]."""
    key = nfkc(text)
    try:
        value = Decimal(key[:-1]) / 100 if key.endswith("%") else Decimal(key)
    except InvalidOperation:
        return None
    return value if value.is_finite() and 0 < value <= 1 else None


def percent(value: Decimal | str) -> str:
    """Decimal('0.05') → '5%' (how offices write ratios)."""
    return f"{(Decimal(value) * 100).normalize():f}%"

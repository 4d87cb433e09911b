"""Bulk import of the target library, the inspector library and exclusion lists (CSV, XLSX).

Files come from offices' spreadsheets: Chinese headers (English aliases accepted), UTF-8,
UTF-8 with BOM, GB18030/GBK or UTF-16 text, or .xlsx. Every row is checked before anything is
written, so the default all-or-nothing import leaves the database untouched when one row is bad
and reports every bad row by the line number the spreadsheet shows. With `skip_invalid` the good
rows are written and the bad ones go to a rejects CSV (original columns + 错误原因).

Targets are written with dialect-specific bulk upserts (ON CONFLICT DO UPDATE) in chunks, not ORM
objects, so a county's or a city's library imports in seconds. An import is one audited change;
the caller commits (core.changes contract).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import String, Table, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import Insert

from core import changes
from core.models import (
    ROLES,
    TARGET_FLAGS,
    TARGET_KINDS,
    TARGET_STATUSES,
    ChatPlatform,
    Department,
    Exclusion,
    Officer,
    PlatformAccount,
    Target,
)
from core.officers import DEFAULT_TENANT, PLATFORM_LABELS, left_officers_notes, set_account
from core.uscc import validate_uscc

Progress = Callable[[int, int | None], None]

CHUNK = 2000  # rows per bulk statement; keeps IN lists far below SQLite's variable limit
HEADER_SEARCH_ROWS = 10  # a title row or two above the header is common in office files
KIND_ZH = {
    "targets": "检查对象",
    "inspectors": "执法检查人员",
    "exclusions": "排除名单",
    "departments": "成员单位",
    "items": "抽查事项清单",
    "conflicts": "利害关系",
    "plan": "年度抽查计划",
}
_SPLIT = re.compile(r"[、,，;；|\r\n]+")
_PAREN = re.compile(r"\(.*\)$")


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class RowError:
    line: int  # as the spreadsheet shows it (header = its own row number)
    column: str  # the header as written in the file
    reason: str  # Chinese


@dataclass
class ImportReport:
    kind: str  # targets | inspectors | exclusions
    file_name: str
    skip_invalid: bool = False
    total_rows: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: list[RowError] = field(default_factory=list)
    rejects_path: Path | None = None
    file_error: str = ""  # the whole file could not be read (format, encoding, missing column)
    ignored_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # Chinese: what the office must look at

    @property
    def ok(self) -> bool:
        """True when the import was written (with skip_invalid, bad rows may have been left out)."""
        return not self.file_error and (self.skip_invalid or not self.rejected)

    @property
    def rejected_rows(self) -> int:
        return len({e.line for e in self.rejected})

    def errors_zh(self) -> list[str]:
        return [f"第 {e.line} 行【{e.column}】{e.reason}" for e in self.rejected]

    def summary_zh(self, examples: int = 5) -> str:
        what = f"{KIND_ZH[self.kind]}导入（{self.file_name}）"
        if self.file_error:
            return f"{what}未完成：{self.file_error}。未写入任何数据。"
        counts = f"共 {self.total_rows} 行"
        if self.ok:
            text = f"{what}完成：{counts}，新增 {self.inserted} 条，更新 {self.updated} 条"
            if self.rejected:
                text += f"，跳过有误的 {self.rejected_rows} 行"
                if self.rejects_path is not None:
                    text += f"（已另存到 {self.rejects_path.name}，改正后可再次导入）"
            return "\n".join([text + "。", *self.notes])
        shown = "；".join(self.errors_zh()[:examples])
        more = (
            f"；另有 {len(self.rejected) - examples} 处错误"
            if len(self.rejected) > examples
            else ""
        )
        return (
            f"{what}未完成：{counts}，其中 {self.rejected_rows} 行有误，为保证名录完整，"
            f"本次未写入任何数据。{shown}{more}。请改正后重新导入，"
            f"或选择“跳过错误行”只导入正确的行。"
        )


class FileProblem(Exception):
    """The file as a whole cannot be imported; the message is Chinese."""


# ---------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    field: str
    aliases: tuple[str, ...]  # in priority order: the first non-empty cell wins
    required: bool = False

    @property
    def label(self) -> str:
        """The Chinese header, named in messages when the file does not have the column."""
        return self.aliases[0]


def header_key(text: object) -> str:
    """Header comparison key: half-width, lower-case, no spaces, no '*' or trailing '(…)' note."""
    key = unicodedata.normalize("NFKC", "" if text is None else str(text)).lower()
    key = "".join(key.split()).replace("*", "").replace("\ufeff", "")
    return _PAREN.sub("", key) or key


# 注册号 comes after the USCC headers: a file with both uses the USCC where it has one.
USCC_COLUMN = Column(
    "uscc",
    ("统一社会信用代码", "社会信用代码", "信用代码", "uscc", "注册号", "registration_no"),
    required=True,
)
TARGET_COLUMNS = (
    USCC_COLUMN,
    Column("name", ("名称", "企业名称", "主体名称", "name"), required=True),
    Column("kind", ("类型", "主体类型", "kind")),
    Column("industry", ("行业", "所属行业", "industry")),
    Column("region", ("区域", "所属区域", "region")),
    Column("address", ("地址", "住所", "经营场所", "address")),
    Column("status", ("状态", "登记状态", "status")),
    Column("risk_level", ("风险等级", "信用风险分类", "风险分类", "risk_level")),
    Column("flags", ("标记", "flags")),
)
ACCOUNT_FIELDS = {p: f"{p}_userid" for p in ChatPlatform}  # import field per platform
INSPECTOR_COLUMNS = (
    Column("name", ("姓名", "name"), required=True),
    Column("department", ("部门", "所属部门", "单位", "department"), required=True),
    Column("cert_no", ("执法证号", "执法证件号", "执法证编号", "cert_no")),
    Column("code", ("人员编号", "编号", "code")),
    Column("expertise", ("专业领域", "专长", "专业特长", "expertise")),
    Column("region", ("区域", "所属区域", "region")),
    Column("mobile", ("手机", "手机号", "手机号码", "mobile")),
    Column("roles", ("角色", "roles", "role")),
    # one column per platform: the officer's account there, headed "企业微信账号" and the like
    *(
        Column(field, (f"{PLATFORM_LABELS[p]}账号", PLATFORM_LABELS[p], field, p))
        for p, field in ACCOUNT_FIELDS.items()
    ),
    Column("on_duty", ("在岗状态", "人员状态", "在岗", "on_duty")),
)
# 在岗状态: the words that deactivate an officer (kept as the reason) and those that keep one on
LEAVE_WORDS = ("离岗", "调离", "退休", "辞职", "离职", "停职")
ON_DUTY_WORDS = ("在岗", "在职", "正常")
EXCLUSION_COLUMNS = (
    USCC_COLUMN,
    Column("year", ("年度", "年份", "year"), required=True),
    Column("department", ("部门", "department")),
    Column("source", ("来源", "source")),
    Column("reason", ("原因", "reason")),
)


# ---------------------------------------------------------------- reading files


@dataclass
class Sheet:
    """A file's header and non-blank data rows, each with its spreadsheet line number."""

    header_line: int
    headers: list[str]
    rows: list[tuple[int, list[Any]]]
    sha256: str


def read_sheet(path: Path, columns: Sequence[Column]) -> Sheet:
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        filled = [(n, cells) for n, cells in _xlsx_lines(data) if any(_text(c) for c in cells)]
    elif suffix in (".csv", ".txt", ".tsv"):
        # CSV cells are all strings: one C-level join per row tells a blank row
        filled = [(n, cells) for n, cells in _csv_lines(_decode(data)) if "".join(cells).strip()]
    elif suffix == ".xls":
        raise FileProblem("不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 CSV 后再导入")
    else:
        raise FileProblem(f"不支持的文件类型“{path.suffix or '无扩展名'}”，请使用 CSV 或 .xlsx")
    if not filled:
        raise FileProblem("文件是空的，没有表头和数据")
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
    return Sheet(
        header_line=header_line,
        headers=[_text(c) for c in header_cells],
        rows=filled[head_at + 1 :],
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" export
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")  # a superset of GBK, what Chinese Excel saves CSV as
    except UnicodeDecodeError:
        raise FileProblem("无法识别文件编码，请另存为“CSV UTF-8”或 .xlsx 后再导入") from None


def _csv_lines(text: str) -> list[tuple[int, list[Any]]]:
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delimiter = max(",\t;", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    # Record numbers, not physical lines: a cell with a line break is still one spreadsheet row.
    return list(enumerate(reader, start=1))


def _xlsx_lines(data: bytes) -> list[tuple[int, list[Any]]]:
    from openpyxl import load_workbook  # imported here: only XLSX imports pay for it

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many kinds for a broken or foreign file
        raise FileProblem(
            f"无法读取 Excel 文件（{type(err).__name__}），请确认是 .xlsx 格式"
        ) from None
    try:
        ws = wb.worksheets[0]
        ws.reset_dimensions()  # some generators write a wrong sheet size; read what is there
        return [(n, list(row)) for n, row in enumerate(ws.iter_rows(values_only=True), start=1)]
    finally:
        wb.close()


def _text(value: Any) -> str:
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


def _nfkc(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


# ---------------------------------------------------------------- row access


class _Layout:
    """Where each field's cells are in this file."""

    def __init__(self, sheet: Sheet, columns: Sequence[Column]) -> None:
        keys = [header_key(h) for h in sheet.headers]
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
        self.ignored = [h for i, h in enumerate(sheet.headers) if h and i not in used]

    def has(self, field_name: str) -> bool:
        return field_name in self.where


class _Row:
    """One data row being checked; collects every problem instead of stopping at the first."""

    __slots__ = ("cells", "errors", "layout", "line", "texts")

    def __init__(self, layout: _Layout, line: int, cells: list[Any]) -> None:
        self.layout, self.line, self.cells = layout, line, cells
        self.texts = [c.strip() if type(c) is str else _text(c) for c in cells]
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

    def text(self, field_name: str, max_len: int) -> str:
        value = self.get(field_name)
        if len(value) > max_len:
            self.error(field_name, f"内容过长：最多 {max_len} 个字，实际 {len(value)} 个字")
        return value

    def error(self, field_name: str, reason: str) -> None:
        self.errors.append(RowError(self.line, self.layout.header[field_name], reason))


def _lengths(table: Table) -> dict[str, int]:
    """Column widths, checked here so PostgreSQL never refuses a row that SQLite would accept."""
    return {
        c.name: int(c.type.length) for c in table.c if isinstance(c.type, String) and c.type.length
    }


_TARGETS = cast(Table, Target.__table__)
_OFFICERS = cast(Table, Officer.__table__)
_EXCLUSIONS = cast(Table, Exclusion.__table__)
_TARGET_LEN, _OFFICER_LEN, _EXCLUSION_LEN = map(_lengths, (_TARGETS, _OFFICERS, _EXCLUSIONS))
_ACCOUNT_LEN = _lengths(cast(Table, PlatformAccount.__table__))["account"]


# ---------------------------------------------------------------- vocabularies


_KINDS = {k: k for k in TARGET_KINDS} | {
    "公司": "企业",
    "个体户": "个体工商户",
    "个体": "个体工商户",
    "合作社": "农民专业合作社",
    "其他": "其他组织",
}
_STATUSES = {s: s for s in TARGET_STATUSES} | {
    "在业": "存续",
    "开业": "存续",
    "在营": "存续",
    "在册": "存续",
    "吊销,未注销": "吊销",
    "吊销,已注销": "注销",
    "已注销": "注销",
    "被吊销": "吊销",
    "被撤销": "撤销",
    "已迁出": "迁出",
    # 歇业 (since the 2022 registration regulation) keeps the entity registered, like 停业.
    "歇业": "停业",
}
_RISK_WORDS = {"低风险": "A", "一般风险": "B", "较高风险": "C", "高风险": "D"}
_FLAGS = {f: f for f in TARGET_FLAGS} | {
    "经营异常": "经营异常名录",
    "异常名录": "经营异常名录",
    "列入经营异常名录": "经营异常名录",
    "严重违法失信": "严重违法失信名单",
    "严重违法": "严重违法失信名单",
    "失信": "严重违法失信名单",
    "投诉": "投诉举报",
    "举报": "投诉举报",
    "重点": "重点监管",
}
_ROLES = {r: r for r in ROLES} | {
    "联络员": "liaison",
    "执法检查人员": "inspector",
    "检查人员": "inspector",
    "分管领导": "leader",
    "领导": "leader",
    "管理员": "admin",
    "专家": "expert",
}


@lru_cache(maxsize=256)
def parse_kind(text: str) -> str | None:
    """The canonical kind; '' for a blank cell; None when unknown."""
    key = _nfkc(text)
    return _KINDS.get(key) if key else ""


@lru_cache(maxsize=256)
def parse_status(text: str) -> str | None:
    """The canonical status; '' for a blank cell; None when unknown."""
    key = _nfkc(text)
    if not key:
        return ""
    return _STATUSES.get(key) or _STATUSES.get(_PAREN.sub("", key))  # 存续（在营、开业、在册）


@lru_cache(maxsize=256)
def parse_risk(text: str) -> str | None:
    """'A', 'a', 'A类', 'A（低风险）', '低风险' → 'A'; '' or '未分类' → ''; else None."""
    key = _nfkc(text).upper()
    if key in ("", "未分类"):
        return ""
    key = re.sub(r"[()类级]", "", key)
    if not key:
        return None
    letter = key[0] if key[0] in "ABCD" else ""
    word = key[1:] if letter else key
    from_word = _RISK_WORDS.get(word, "") if word else ""
    if (word and not from_word) or (letter and from_word and letter != from_word):
        return None
    return letter or from_word


def split_multi(text: str) -> list[str]:
    return [p.strip() for p in _SPLIT.split(text) if p.strip()]


def _parse_flags(row: _Row) -> str:
    found: set[str] = set()
    for part in split_multi(row.get("flags")):
        flag = _FLAGS.get(_nfkc(part))
        if flag is None:
            row.error("flags", f"未知标记“{part}”，可用：{'、'.join(TARGET_FLAGS)}")
        else:
            found.add(flag)
    return "|".join(f for f in TARGET_FLAGS if f in found)


def _check_uscc(row: _Row) -> tuple[str, bool]:
    check = validate_uscc(row.raw("uscc"))
    if not check.ok:
        row.error("uscc", check.reason)
    return check.code, check.is_legacy


# ---------------------------------------------------------------- shared flow


@dataclass
class _Checked:
    """The outcome of checking a whole file."""

    sheet: Sheet
    layout: _Layout
    records: list[tuple[int, dict[str, Any]]]  # (line, record) of the good rows
    bad: dict[int, list[RowError]]  # line → its errors

    def good(self) -> list[dict[str, Any]]:
        return [r for _, r in self.records]


def _check_file(
    sheet: Sheet,
    layout: _Layout,
    check_row: Callable[[_Row], dict[str, Any]],
    key_of: Callable[[dict[str, Any]], tuple[Any, ...]],
    key_field: str,
    key_label: str,
) -> _Checked:
    records: list[tuple[int, dict[str, Any]]] = []
    bad: dict[int, list[RowError]] = {}
    first_seen: dict[tuple[Any, ...], int] = {}
    for line, cells in sheet.rows:
        row = _Row(layout, line, cells)
        record = check_row(row)
        if not row.errors:
            key = key_of(record)
            earlier = first_seen.setdefault(key, line)
            if earlier != line:
                row.error(key_field, f"{key_label}与第 {earlier} 行重复（第 {earlier}、{line} 行）")
        if row.errors:
            bad[line] = row.errors
        else:
            records.append((line, record))
    return _Checked(sheet, layout, records, bad)


def _write_rejects(target: Path, checked: _Checked) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8-sig", newline="") as fh:  # BOM: Excel opens it right
        out = csv.writer(fh)
        out.writerow([*checked.sheet.headers, "错误原因"])
        width = len(checked.sheet.headers)
        for line, cells in checked.sheet.rows:
            if line in checked.bad:
                texts = [_text(c) for c in cells[:width]]
                texts += [""] * (width - len(texts))
                out.writerow(
                    [*texts, "；".join(f"【{e.column}】{e.reason}" for e in checked.bad[line])]
                )


def default_rejects_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}_未导入行.csv")


Checker = Callable[[Sheet, _Layout], _Checked]
# A writer may add notes (departments missing from the file, officers' open cases) to the report
Writer = Callable[[_Checked, Progress | None], Awaitable[tuple[int, int]]]


async def _run(
    ctx: changes.Ctx,
    kind: str,
    path: Path,
    columns: Sequence[Column],
    *,
    check: Checker,
    write: Writer,
    report: ImportReport | None = None,
    prepare: Callable[[Sheet], Awaitable[None]] | None = None,
    skip_invalid: bool,
    rejects_path: Path | None,
    progress: Progress | None,
) -> ImportReport:
    """Read, check, then (only if allowed) write and record — the flow every import shares."""
    path = Path(path)
    report = report or ImportReport(kind=kind, file_name=path.name, skip_invalid=skip_invalid)
    try:
        sheet = read_sheet(path, columns)
    except FileProblem as err:
        report.file_error = str(err)
        return report
    except OSError as err:
        report.file_error = f"无法打开文件：{err.strerror or err}"
        return report
    layout = _Layout(sheet, columns)
    report.ignored_columns = layout.ignored
    if layout.missing:
        report.file_error = "缺少必填列" + "、".join(
            f"“{c.label}”（也可写作 {' / '.join(a for a in c.aliases[1:])}）"
            for c in layout.missing
        )
        return report
    if prepare is not None:
        await prepare(sheet)
    checked = check(sheet, layout)
    report.total_rows = len(sheet.rows)
    report.rejected = [e for errs in checked.bad.values() for e in errs]
    if checked.bad and (skip_invalid or rejects_path is not None):
        report.rejects_path = rejects_path or default_rejects_path(path)
        _write_rejects(report.rejects_path, checked)
    if not report.ok:
        return report
    report.inserted, report.updated = await write(checked, progress)
    await changes.record(
        ctx,
        f"import.{kind}",
        f"import:{kind}",
        {
            "file": path.name,
            "sha256": sheet.sha256,
            "total_rows": report.total_rows,
            "inserted": report.inserted,
            "updated": report.updated,
            "rejected_rows": report.rejected_rows,
            "skip_invalid": skip_invalid,
            **({"notes": report.notes} if report.notes else {}),
        },
    )
    return report


_INSERTS: dict[str, Callable[[Table], Any]] = {"sqlite": sqlite_insert, "postgresql": pg_insert}


def _upsert(
    dialect: Dialect, table: Table, keys: list[str], update_fields: Iterable[str]
) -> Insert:
    """INSERT … ON CONFLICT (keys) DO UPDATE, in the dialect's own syntax."""
    make = _INSERTS.get(dialect.name)
    if make is None:
        raise ValueError(f"bulk import supports sqlite and postgresql, not {dialect.name}")
    ins = make(table)
    return cast(
        Insert,
        ins.on_conflict_do_update(
            index_elements=keys, set_={f: ins.excluded[f] for f in update_fields}
        ),
    )


async def _executemany(conn: AsyncConnection, stmt: Insert, rows: list[dict[str, Any]]) -> None:
    """Compile once, then one driver-level executemany of plain tuples: SQLAlchemy's per-row
    parameter handling cost more than SQLite's own work on 100,000 rows."""
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    order = compiled.positiontup or []
    await conn.exec_driver_sql(str(compiled), [tuple(r[k] for k in order) for r in rows])


def _chunks(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def _core_connection(session: AsyncSession) -> AsyncConnection:
    """The session's own connection (same transaction), after flushing pending ORM changes."""
    await session.flush()
    return await session.connection()


def _expire(session: AsyncSession, model: type[Any]) -> None:
    """Core statements bypass the identity map: expire loaded rows of that model so the next
    query reloads them instead of returning stale values (other models stay untouched)."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model):
            session.expire(obj)


# ---------------------------------------------------------------- targets


def _check_target(row: _Row) -> dict[str, Any]:
    uscc, legacy = _check_uscc(row)
    name = row.text("name", _TARGET_LEN["name"])
    if not name:
        row.error("name", "名称为空")
    kind = parse_kind(row.get("kind"))
    if kind is None:
        row.error("kind", f"未知类型“{row.get('kind')}”，可用：{'、'.join(TARGET_KINDS)}")
    status = parse_status(row.get("status"))
    if status is None:
        row.error(
            "status",
            f"未知状态“{row.get('status')}”，可用：{'、'.join(TARGET_STATUSES)}"
            "（在业、开业视同存续）",
        )
    risk = parse_risk(row.get("risk_level"))
    if risk is None:
        row.error(
            "risk_level",
            f"未知风险等级“{row.get('risk_level')}”，可用：A 低风险、"
            "B 一般风险、C 较高风险、D 高风险，未分类留空",
        )
    return {
        "uscc": uscc,
        "is_legacy_id": legacy,
        "name": name,
        "kind": kind,
        "industry": row.text("industry", _TARGET_LEN["industry"]),
        "region": row.text("region", _TARGET_LEN["region"]),
        "address": row.text("address", _TARGET_LEN["address"]),
        "status": status,
        "risk_level": risk,
        "flags": _parse_flags(row),
    }


def check_targets(sheet: Sheet, layout: _Layout | None = None) -> _Checked:
    """Check every row of a target file; no database needed (used by the benchmark too)."""
    return _check_file(
        sheet,
        layout or _Layout(sheet, TARGET_COLUMNS),
        _check_target,
        lambda r: (r["uscc"],),
        "uscc",
        "统一社会信用代码",
    )


# A blank cell in these columns means "not given": a new target gets the column's default, an
# existing one keeps its value (a blank 状态 must not turn a 注销 target back into 存续).
# A blank 风险等级 or 标记 is a value: unclassified, no flags.
KEEP_IF_BLANK = ("kind", "industry", "region", "address", "status")
_TARGET_DEFAULTS: dict[str, Any] = {
    f: getattr(_TARGETS.c[f].default, "arg", "") for f in KEEP_IF_BLANK
}
_TARGET_UPDATES = ("name", "kind", "industry", "region", "address", "status", "risk_level", "flags")


def _group_by_blanks(chunk: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Rows of a chunk by which keep-if-blank columns they leave blank (defaults filled in)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for rec in chunk:
        blank = tuple(f for f in KEEP_IF_BLANK if not rec[f])
        if blank:
            rec = rec | {f: _TARGET_DEFAULTS[f] for f in blank}
        groups.setdefault(blank, []).append(rec)
    return groups


async def import_targets(
    ctx: changes.Ctx,
    path: Path,
    *,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the target library; existing targets (same USCC) are updated.

    Only columns present in the file are updated, so a file without 风险等级 keeps the levels
    already stored; see KEEP_IF_BLANK for blank cells. `progress(done, total)` is called as
    rows are written.
    """

    async def write(checked: _Checked, progress: Progress | None) -> tuple[int, int]:
        table = _TARGETS
        present = [f for f in _TARGET_UPDATES if checked.layout.has(f)]
        conn = await _core_connection(ctx.session)
        statements: dict[tuple[str, ...], Insert] = {}
        count = select(func.count()).select_from(table)
        # Rows are unique by USCC within the file, so each one either inserts or updates: the
        # growth of the table is the insert count (cheaper than looking every code up first).
        before = (await conn.execute(count)).scalar_one()
        done, total = 0, len(checked.records)
        for chunk in _chunks(checked.good()):
            for blank, rows in _group_by_blanks(chunk).items():
                if blank not in statements:
                    statements[blank] = _upsert(
                        conn.dialect, table, ["uscc"], [f for f in present if f not in blank]
                    )
                await _executemany(conn, statements[blank], rows)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        inserted = (await conn.execute(count)).scalar_one() - before
        _expire(ctx.session, Target)
        return inserted, total - inserted

    return await _run(
        ctx,
        "targets",
        path,
        TARGET_COLUMNS,
        check=check_targets,
        write=write,
        skip_invalid=skip_invalid,
        rejects_path=rejects_path,
        progress=progress,
    )


# ---------------------------------------------------------------- departments (shared lookup)


class _Departments:
    """Find a department by its name, short name or code, as people write them."""

    AMBIGUOUS = -1

    def __init__(self, departments: Iterable[Department]) -> None:
        self.by_key: dict[str, int] = {}
        self.codes: dict[int, str] = {}
        for d in departments:
            self.codes[d.id] = d.code
            for key in {self._key(d.name), self._key(d.short_name), self._key(d.code)} - {""}:
                seen = self.by_key.get(key)
                self.by_key[key] = d.id if seen in (None, d.id) else self.AMBIGUOUS

    @staticmethod
    def _key(text: str) -> str:
        return _nfkc(text or "").upper()

    def find(self, row: _Row, field_name: str, *, required: bool) -> int | None:
        text = row.get(field_name)
        if not text:
            if required:
                row.error(field_name, "部门为空")
            return None
        return self.lookup(row, field_name, text)

    def lookup(self, row: _Row, field_name: str, text: str) -> int | None:
        """One department named in a cell (a cell may name several, e.g. 参与部门)."""
        found = self.by_key.get(self._key(text))
        if found is None:
            row.error(field_name, f"未知部门“{text}”（请填写部门全称、简称或部门编码）")
        elif found == self.AMBIGUOUS:
            row.error(field_name, f"“{text}”对应多个部门，请填写部门全称")
            return None
        return found


async def _load_departments(session: AsyncSession) -> _Departments:
    return _Departments((await session.scalars(select(Department))).all())


# ---------------------------------------------------------------- inspectors


@dataclass
class _Accounts:
    """Existing officers' codes and platform accounts, to refuse an account owned by another."""

    officers: dict[str, Officer]
    owners: dict[ChatPlatform, dict[str, str]]  # per platform: account -> officer code

    @classmethod
    def of(cls, officers: dict[str, Officer]) -> _Accounts:
        owners: dict[ChatPlatform, dict[str, str]] = {p: {} for p in ChatPlatform}
        for officer in officers.values():
            for bound in officer.accounts:
                if bound.tenant == DEFAULT_TENANT:
                    owners[ChatPlatform(bound.platform)][bound.account] = officer.code
        return cls(officers, owners)


def _check_inspector(row: _Row, departments: _Departments, accounts: _Accounts) -> dict[str, Any]:
    name = row.text("name", _OFFICER_LEN["name"])
    if not name:
        row.error("name", "姓名为空")
    dept_id = departments.find(row, "department", required=True)
    cert_no = row.text("cert_no", _OFFICER_LEN["cert_no"])
    code = _nfkc(row.get("code"))
    if not code and cert_no and dept_id is not None:
        code = f"{departments.codes[dept_id]}-{_nfkc(cert_no)}"  # stable across re-imports
    if not code and dept_id is not None:
        row.error("code", "人员编号为空，且没有执法证号可用来生成编号")
    elif len(code) > _OFFICER_LEN["code"]:
        row.error("code", f"人员编号“{code}”过长：最多 {_OFFICER_LEN['code']} 个字符")
    existing = accounts.officers.get(code)
    # a blank 角色 keeps an existing officer's roles and makes a new officer an inspector
    roles = _parse_roles(row) or (set(existing.roles) if existing else {"inspector"})
    if (
        "inspector" in roles
        and not cert_no
        and not (existing and existing.cert_no and not row.layout.has("cert_no"))
    ):
        # 001 第十条: only officers with enforcement powers go into the inspector library
        row.error(
            "cert_no",
            "执法检查人员必须填写执法证号；没有执法证的人员请在“角色”中只填"
            "联络员、分管领导等，不要填执法检查人员",
        )
    record = {
        "code": code,
        "name": name,
        "department_id": dept_id,
        "cert_no": cert_no,
        "expertise": split_multi(row.get("expertise")),
        "region": row.text("region", _OFFICER_LEN["region"]),
        "mobile": row.text("mobile", _OFFICER_LEN["mobile"]),
        "roles": [r for r in ROLES if r in roles],
        **_parse_on_duty(row),
    }
    for platform, fld in ACCOUNT_FIELDS.items():
        account = row.text(fld, _ACCOUNT_LEN) or None
        owner = accounts.owners[platform].get(account) if account else None
        if owner is not None and owner != code:
            row.error(fld, f"{PLATFORM_LABELS[platform]}账号“{account}”已属于人员 {owner}")
        record[fld] = account
    return record


def _parse_roles(row: _Row) -> set[str]:
    """The roles the row gives (empty when the cell is blank)."""
    roles: set[str] = set()
    for part in split_multi(row.get("roles")):
        role = _ROLES.get(_nfkc(part).lower()) or _ROLES.get(_nfkc(part))
        if role is None:
            row.error(
                "roles", f"未知角色“{part}”，可用：联络员、执法检查人员、分管领导、管理员、专家"
            )
        else:
            roles.add(role)
    return roles


def _parse_on_duty(row: _Row) -> dict[str, Any]:
    """{} when the row does not say; else active and the reason an officer left."""
    word = _nfkc(row.get("on_duty"))
    if not word:
        return {}
    if word in ON_DUTY_WORDS:
        return {"active": True, "inactive_reason": ""}
    if word in LEAVE_WORDS:
        return {"active": False, "inactive_reason": word}
    row.error("on_duty", f"未知在岗状态“{word}”，可用：在岗、{'、'.join(LEAVE_WORDS)}")
    return {}


def _account_duplicates(checked: _Checked) -> None:
    """Two rows giving the same platform account: both are refused, naming each other."""
    for platform, fld in ACCOUNT_FIELDS.items():
        label = f"{PLATFORM_LABELS[platform]}账号"
        lines: dict[str, list[int]] = {}
        for line, rec in checked.records:
            if rec[fld]:
                lines.setdefault(rec[fld], []).append(line)
        for account, at in lines.items():
            for line in at[1:]:
                checked.bad.setdefault(line, []).append(
                    RowError(
                        line,
                        checked.layout.header[fld],
                        f"{label}“{account}”与第 {at[0]} 行重复（第 {at[0]}、{line} 行）",
                    )
                )
    checked.records = [(line, r) for line, r in checked.records if line not in checked.bad]


async def import_inspectors(
    ctx: changes.Ctx,
    path: Path,
    *,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the inspector library: officers gain the inspector role; same code = update.

    Roles are only ever added (an import never takes admin or leader away); columns absent
    from the file leave the stored values alone, and so does a blank account cell (an officer
    bound with 绑定 stays bound).
    """
    state: dict[str, Any] = {}

    async def prepare(_sheet: Sheet) -> None:
        state["departments"] = await _load_departments(ctx.session)
        officers = {o.code: o for o in (await ctx.session.scalars(select(Officer))).unique()}
        state["accounts"] = _Accounts.of(officers)

    def check(sheet: Sheet, layout: _Layout) -> _Checked:
        checked = _check_file(
            sheet,
            layout,
            lambda row: _check_inspector(row, state["departments"], state["accounts"]),
            lambda r: (r["code"],),
            "code",
            "人员编号",
        )
        _account_duplicates(checked)
        return checked

    async def write(checked: _Checked, progress: Progress | None) -> tuple[int, int]:
        officers: dict[str, Officer] = state["accounts"].officers
        fields = [
            "name",
            "department_id",
            *(f for f in ("cert_no", "expertise", "region", "mobile") if checked.layout.has(f)),
        ]
        inserted = updated = 0
        left: list[Officer] = []
        for done, rec in enumerate(checked.good(), start=1):
            officer = officers.get(rec["code"])
            if officer is None:
                officer = Officer(
                    **{k: v for k, v in rec.items() if k not in ACCOUNT_FIELDS.values()}
                )
                ctx.session.add(officer)
                inserted += 1
            else:
                was_active = officer.active
                for f in (*fields, *(f for f in ("active", "inactive_reason") if f in rec)):
                    setattr(officer, f, rec[f])
                officer.roles = [r for r in ROLES if r in {*officer.roles, *rec["roles"]}]
                updated += 1
                if was_active and not officer.active:
                    left.append(officer)
            for platform, fld in ACCOUNT_FIELDS.items():
                if rec[fld] is not None:  # blank: "not given", whatever is bound stays
                    set_account(officer, platform, rec[fld])
            if progress is not None and (done % CHUNK == 0 or done == len(checked.records)):
                progress(done, len(checked.records))
        await ctx.session.flush()
        report.notes.extend(await left_officers_notes(ctx, left))
        return inserted, updated

    report = ImportReport(kind="inspectors", file_name=Path(path).name, skip_invalid=skip_invalid)
    return await _run(
        ctx,
        "inspectors",
        path,
        INSPECTOR_COLUMNS,
        check=check,
        prepare=prepare,
        write=write,
        report=report,
        skip_invalid=skip_invalid,
        rejects_path=rejects_path,
        progress=progress,
    )


# ---------------------------------------------------------------- exclusions


def _parse_year(row: _Row) -> int:
    text = _nfkc(row.get("year")).removesuffix("年")
    if not text:
        row.error("year", "年度为空")
        return 0
    if not text.isascii() or not text.isdigit() or not 2000 <= int(text) <= 2100:
        row.error("year", f"年度“{row.get('year')}”不是有效年份（例如 2026）")
        return 0
    return int(text)


def _check_exclusion(row: _Row, departments: _Departments) -> dict[str, Any]:
    uscc, _legacy = _check_uscc(row)
    return {
        "year": _parse_year(row),
        "uscc": uscc,
        "department_id": departments.find(row, "department", required=False),
        "source": row.text("source", _EXCLUSION_LEN["source"]),
        "reason": row.text("reason", _EXCLUSION_LEN["reason"]),
    }


def _exclusion_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    return rec["year"], rec["uscc"], rec["department_id"], rec["source"]


async def import_exclusions(
    ctx: changes.Ctx,
    path: Path,
    *,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import 'already inspected this year' records. Same (year, code, department, source)
    updates the reason. Matching is done here, not by ON CONFLICT, because a missing
    department is NULL and NULLs never conflict in a unique constraint."""
    state: dict[str, Any] = {}

    async def prepare(_sheet: Sheet) -> None:
        state["departments"] = await _load_departments(ctx.session)

    def check(sheet: Sheet, layout: _Layout) -> _Checked:
        return _check_file(
            sheet,
            layout,
            lambda row: _check_exclusion(row, state["departments"]),
            _exclusion_key,
            "uscc",
            "同一年度、代码、部门和来源的记录",
        )

    async def write(checked: _Checked, progress: Progress | None) -> tuple[int, int]:
        table = _EXCLUSIONS
        conn = await _core_connection(ctx.session)
        records = checked.good()
        years = sorted({r["year"] for r in records})
        existing = {
            (y, u, d, s): (i, r)
            for i, y, u, d, s, r in (
                await conn.execute(
                    select(
                        table.c.id,
                        table.c.year,
                        table.c.uscc,
                        table.c.department_id,
                        table.c.source,
                        table.c.reason,
                    ).where(table.c.year.in_(years))
                )
            ).all()
        }
        new = [r for r in records if _exclusion_key(r) not in existing]
        changed = [
            {"b_id": existing[_exclusion_key(r)][0], "reason": r["reason"]}
            for r in records
            if _exclusion_key(r) in existing and existing[_exclusion_key(r)][1] != r["reason"]
        ]
        done = 0
        for chunk in _chunks(new):
            await conn.execute(table.insert(), chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, len(records))
        if changed:
            await conn.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(reason=bindparam("reason")),
                changed,
            )
        if progress is not None:
            progress(len(records), len(records))
        _expire(ctx.session, Exclusion)
        return len(new), len(records) - len(new)

    return await _run(
        ctx,
        "exclusions",
        path,
        EXCLUSION_COLUMNS,
        check=check,
        prepare=prepare,
        write=write,
        skip_invalid=skip_invalid,
        rejects_path=rejects_path,
        progress=progress,
    )

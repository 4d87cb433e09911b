"""Setup and planning: the flow every import shares (core.imports.*): read the file, check every
row before anything is written, report each bad row, write all-or-nothing (or, with
`skip_invalid`, the good rows and a rejects CSV), and record the import as one audited change;
the caller commits (core.changes contract). Also the bulk-write helpers and the department
look-up that several importers use.
"""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import Insert

from core import changes, department_names
from core.errors import os_reason
from core.imports.examples import example_error
from core.imports.reading import (
    ENCODING_HINT,
    Column,
    FileProblem,
    Layout,
    Row,
    RowError,
    Sheet,
    cell_text,
    nfkc,
    read_sheet,
)
from core.models import Department

Progress = Callable[[int, int | None], None]

CHUNK = 2000  # rows per bulk statement; keeps IN lists far below SQLite's variable limit
KEPT_SHOWN = 10  # stored rows a note names before it counts the rest
KIND_ZH = {
    "targets": "检查对象",
    "inspectors": "执法检查人员",
    "exclusions": "排除名单",
    "departments": "成员单位",
    "items": "抽查事项清单",
    "conflicts": "利害关系",
    "plan": "年度抽查计划",
}


@dataclass
class ImportReport:
    kind: str  # targets | inspectors | exclusions
    file_name: str
    skip_invalid: bool = False
    sheet_name: str = ""  # the worksheet read, when the workbook has several
    total_rows: int = 0
    inserted: int = 0
    updated: int = 0  # rows whose stored values changed
    unchanged: int = 0  # rows already stored as the file has them
    rejected: list[RowError] = field(default_factory=list)
    rejects_path: Path | None = None
    # good rows the writer left alone on purpose, by reason (e.g. a plan whose task was
    # started): their keys, as the office names them; counted apart from 未变
    skipped: dict[str, list[str]] = field(default_factory=dict)
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

    @property
    def skipped_rows(self) -> int:
        return sum(len(keys) for keys in self.skipped.values())

    def skip(self, reason: str, key: str) -> None:
        """A good row the writer leaves alone, and why (in Chinese, as the summary says it)."""
        self.skipped.setdefault(reason, []).append(key)

    def errors_zh(self) -> list[str]:
        return [f"第 {e.line} 行【{e.column}】{e.reason}" for e in self.rejected]

    def summary_zh(self, examples: int = 5) -> str:
        sheet = f"，工作表“{self.sheet_name}”" if self.sheet_name else ""
        what = f"{KIND_ZH[self.kind]}导入（{self.file_name}{sheet}）"
        if self.file_error:
            return f"{what}未完成：{self.file_error}。未写入任何数据。"
        counts = f"共 {self.total_rows} 行"
        if self.ok:
            text = f"{what}完成：{counts}，新增 {self.inserted} 条，更新 {self.updated} 条"
            if self.unchanged:
                text += f"，未变 {self.unchanged} 条"
            for reason, keys in self.skipped.items():
                text += f"，跳过 {len(keys)} 行（{reason}：{'、'.join(keys)}）"
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
            f"或加 --skip-invalid 只导入正确的行（有误的行另存到拒收文件）。"
        )


# ---------------------------------------------------------------- shared flow


@dataclass
class Checked:
    """The outcome of checking a whole file."""

    sheet: Sheet
    layout: Layout
    records: list[tuple[int, dict[str, Any]]]  # (line, record) of the good rows
    bad: dict[int, list[RowError]]  # line → its errors
    # line → what the check made of a bad row (its fields may be blank or None): a rejected
    # row is still in the file, so its key must not read as left out (retired, deleted)
    bad_records: dict[int, dict[str, Any]] = field(default_factory=dict)

    def good(self) -> list[dict[str, Any]]:
        return [r for _, r in self.records]

    def rejected(self) -> list[dict[str, Any]]:
        return [r for line, r in self.bad_records.items() if line in self.bad]

    def unkeyed(self, key_field: str) -> list[tuple[int, dict[str, Any]]]:
        """The rejected rows whose key came out blank, by line: in the file, but which stored
        row each one is cannot be told, so no stored row it could be may read as left out."""
        return [
            (line, r)
            for line, r in sorted(self.bad_records.items())
            if line in self.bad and not r[key_field]
        ]

    def drop_bad(self) -> None:
        """Move the good rows a whole-file check found bad (duplicates) to the bad ones."""
        self.bad_records.update((line, r) for line, r in self.records if line in self.bad)
        self.records = [(line, r) for line, r in self.records if line not in self.bad]


def check_file(
    sheet: Sheet,
    layout: Layout,
    check_row: Callable[[Row], dict[str, Any]],
    key_of: Callable[[dict[str, Any]], tuple[Any, ...]],
    key_field: str,
    key_label: str,
) -> Checked:
    records: list[tuple[int, dict[str, Any]]] = []
    bad: dict[int, list[RowError]] = {}
    bad_records: dict[int, dict[str, Any]] = {}
    first_seen: dict[tuple[Any, ...], int] = {}
    for line, cells in sheet.rows:
        row = Row(layout, line, cells)
        record = check_row(row)
        row.check_cells()
        if (example := example_error(layout.kind, row)) is not None:
            row.errors = [example]  # the row is to be deleted, not corrected
        key = key_of(record)
        # a bad row's duplicate is told in the same run when its key is whole (it came only
        # once every other error was fixed); a key with a blank or unread part may be no key
        if not row.errors or all(k not in (None, "", 0) for k in key):
            earlier = first_seen.setdefault(key, line)
            if earlier != line:
                row.error(key_field, f"{key_label}与第 {earlier} 行重复（第 {earlier}、{line} 行）")
        if row.errors:
            bad[line] = row.errors
            bad_records[line] = record
        else:
            records.append((line, record))
    return Checked(sheet, layout, records, bad, bad_records)


def _write_rejects(target: Path, checked: Checked) -> None:
    """The bad rows with their reasons, as XLSX when the name ends in .xlsx, else CSV."""
    width = len(checked.sheet.headers)
    rows = [[*checked.sheet.headers, "错误原因"]]
    for line, cells in checked.sheet.rows:
        if line in checked.bad:
            texts = [cell_text(c) for c in cells[:width]]
            texts += [""] * (width - len(texts))
            rows.append([*texts, "；".join(f"【{e.column}】{e.reason}" for e in checked.bad[line])])
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".xlsx":
        _write_xlsx(target, rows)
        return
    with target.open("w", encoding="utf-8-sig", newline="") as fh:  # BOM: Excel opens it right
        csv.writer(fh).writerows(rows)


def _write_xlsx(target: Path, rows: list[list[str]]) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    sheet = wb.active
    assert sheet is not None  # a new workbook has one sheet
    for row in rows:
        sheet.append(row)  # text cells: a code stays a code when the office re-imports it
    wb.save(target)


def unkeyed_note(
    lines: Iterable[int], key_label: str, what: str, verb: str, kept: list[str]
) -> str:
    """The stored rows an import leaves alone because rejected rows without a key might be
    them (Checked.unkeyed), and what the office does about it."""
    at = "、".join(f"第 {line} 行" for line in lines)
    return (
        f"{at}的{key_label}为空，无法确定是哪一项，以下{what}本次未{verb}，"
        f"请改正该行后重新导入：{'、'.join(kept)}"
    )


def kept_note(layout: Layout, fields: Sequence[str], what: str, keys: Sequence[str]) -> list[str]:
    """The stored values an import left as they were because the file has no column for them
    (an absent column is not a column of blanks), naming the rows, for the report; [] when the
    file has every such column or names no stored row."""
    absent = [layout.header[f] for f in fields if not layout.has(f)]
    if not absent or not keys:
        return []
    shown = "、".join(keys[:KEPT_SHOWN]) + (f" 等 {len(keys)} 条" if len(keys) > KEPT_SHOWN else "")
    return [
        f"文件中没有“{'”“'.join(absent)}”列，以下已有{what}的这些内容保持原值"
        f"（要清空，请加上该列并留空）：{shown}"
    ]


def default_rejects_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}_未导入行.csv")


Checker = Callable[[Sheet, Layout], Checked]
# A writer returns how many rows it inserted and how many stored rows it changed (an equal row
# is no update: a re-imported file reported every row as updated). It may add notes
# (departments missing from the file, officers' open cases) to the report.
Writer = Callable[[Checked, Progress | None], Awaitable[tuple[int, int]]]


async def run_import(
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
        report.file_error = f"无法打开文件：{os_reason(err)}"
        return report
    report.sheet_name = sheet.sheet_name
    layout = Layout(sheet, columns, kind)
    report.ignored_columns = layout.ignored
    if layout.missing:
        report.file_error = "缺少必填列" + "、".join(
            f"“{c.label}”（也可写作 {' / '.join(a for a in c.aliases[1:])}）"
            for c in layout.missing
        )
        if sheet.legacy_encoding:
            shown = "、".join(f"“{h}”" for h in sheet.headers[:5] if h)
            report.file_error += f"（读到的表头：{shown}）。{ENCODING_HINT}"
        return report
    if prepare is not None:
        await prepare(sheet)
    checked = check(sheet, layout)
    report.total_rows = len(sheet.rows)
    report.rejected = [e for line in sorted(checked.bad) for e in checked.bad[line]]
    if checked.bad and (skip_invalid or rejects_path is not None):
        report.rejects_path = rejects_path or default_rejects_path(path)
        _write_rejects(report.rejects_path, checked)
    if not report.ok:
        return report
    report.inserted, report.updated = await write(checked, progress)
    report.unchanged = len(checked.records) - report.inserted - report.updated - report.skipped_rows
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
            "unchanged": report.unchanged,
            "rejected_rows": report.rejected_rows,
            **({"skipped": report.skipped} if report.skipped else {}),
            "skip_invalid": skip_invalid,
            **({"notes": report.notes} if report.notes else {}),
        },
    )
    return report


_INSERTS: dict[str, Callable[[Table], Any]] = {"sqlite": sqlite_insert, "postgresql": pg_insert}


def upsert(dialect: Dialect, table: Table, keys: list[str], update_fields: Iterable[str]) -> Insert:
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


async def executemany(conn: AsyncConnection, stmt: Insert, rows: list[dict[str, Any]]) -> None:
    """Compile once, then one driver-level executemany of plain tuples: SQLAlchemy's per-row
    parameter handling cost more than SQLite's own work on 100,000 rows."""
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    order = compiled.positiontup or []
    await conn.exec_driver_sql(str(compiled), [tuple(r[k] for k in order) for r in rows])


def chunks(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def core_connection(session: AsyncSession) -> AsyncConnection:
    """The session's own connection (same transaction), after flushing pending ORM changes."""
    await session.flush()
    return await session.connection()


def assign(obj: Any, values: Mapping[str, Any]) -> bool:
    """Set the fields that differ; whether any did (the row counts as updated)."""
    changed = {f: v for f, v in values.items() if getattr(obj, f) != v}
    for f, v in changed.items():
        setattr(obj, f, v)
    return bool(changed)


def expire_loaded(session: AsyncSession, model: type[Any]) -> None:
    """Core statements bypass the identity map: expire loaded rows of that model so the next
    query reloads them instead of returning stale values (other models stay untouched)."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model):
            session.expire(obj)


# ---------------------------------------------------------------- departments (shared lookup)


class Departments:
    """Find a department as people write it: resolved by core.department_names, as the task
    file, chat, --department and `chat bind` resolve it (code, full or short name, informal
    name fitting one department alone, the name of a body merged away); an ambiguous name is
    refused with the candidates."""

    def __init__(self, departments: Iterable[Department]) -> None:
        self.departments = list(departments)
        self.codes: dict[int, str] = {d.id: d.code for d in self.departments}
        self._found: dict[str, int | str] = {}  # text → department id, or the refusal

    def find(self, row: Row, field_name: str, *, required: bool) -> int | None:
        text = row.get(field_name)
        if not text:
            if required:
                row.error(field_name, "部门为空")
            return None
        return self.lookup(row, field_name, text)

    def lookup(self, row: Row, field_name: str, text: str) -> int | None:
        """One department named in a cell (a cell may name several, e.g. 参与部门)."""
        found = self._found.get(text)
        if found is None:
            found = self._found[text] = self._resolve(text)
        if isinstance(found, str):
            row.error(field_name, found)
            return None
        return found

    def _resolve(self, text: str) -> int | str:
        # as written first (a name may hold full-width brackets), then half-width, no spaces
        found = department_names.named(self.departments, text) or department_names.named(
            self.departments, nfkc(text)
        )
        if len(found) > 1:
            return department_names.ambiguous(text, found)
        if not found:
            return department_names.unknown(self.departments, text)
        return found[0].id


async def load_departments(session: AsyncSession) -> Departments:
    return Departments((await session.scalars(select(Department))).all())

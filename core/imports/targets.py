"""Importing the target library (检查对象名录): the market regulator's register as offices export
it — USCC (or an old 注册号), name, kind, status, risk class and flags, in the office's own
words mapped to the stored vocabulary.

Targets are written with dialect-specific bulk upserts (ON CONFLICT DO UPDATE) in chunks, not ORM
objects, so a county's or a city's library imports in seconds.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.sql.dml import Insert

from core import changes
from core.draws.algorithm import RISK_LABELS
from core.imports.flow import (
    Checked,
    ImportReport,
    Progress,
    check_file,
    chunks,
    core_connection,
    executemany,
    expire_loaded,
    run_import,
    upsert,
)
from core.imports.reading import (
    TRAILING_NOTE,
    USCC_COLUMN,
    Column,
    Layout,
    Row,
    Sheet,
    check_uscc,
    column_lengths,
    entity_name,
    nfkc,
    split_multi,
)
from core.models import TARGET_FLAGS, TARGET_KINDS, TARGET_STATUSES, Target

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

_TARGETS = cast(Table, Target.__table__)
_TARGET_LEN = column_lengths(_TARGETS)


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
_RISK_WORDS = {word: code for code, word in RISK_LABELS.items()}
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


@lru_cache(maxsize=256)
def parse_kind(text: str) -> str | None:
    """The canonical kind; '' for a blank cell; None when unknown."""
    key = nfkc(text)
    return _KINDS.get(key) if key else ""


@lru_cache(maxsize=256)
def parse_status(text: str) -> str | None:
    """The canonical status; '' for a blank cell; None when unknown."""
    key = nfkc(text)
    if not key:
        return ""
    return _STATUSES.get(key) or _STATUSES.get(
        TRAILING_NOTE.sub("", key)
    )  # 存续（在营、开业、在册）


@lru_cache(maxsize=256)
def parse_risk(text: str) -> str | None:
    """'A', 'a', 'A类', 'A（低风险）', '低风险' → 'A'; '' or '未分类' → ''; else None."""
    key = nfkc(text).upper()
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


def _parse_flags(row: Row) -> str:
    found: set[str] = set()
    for part in split_multi(row.get("flags")):
        flag = _FLAGS.get(nfkc(part))
        if flag is None:
            row.error("flags", f"未知标记“{part}”，可用：{'、'.join(TARGET_FLAGS)}")
        else:
            found.add(flag)
    return "|".join(f for f in TARGET_FLAGS if f in found)


def _check_target(row: Row) -> dict[str, Any]:
    uscc, legacy = check_uscc(row)
    name = row.text("name", _TARGET_LEN["name"], entity_name)
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


def check_targets(sheet: Sheet, layout: Layout | None = None) -> Checked:
    """Check every row of a target file; no database needed (used by the benchmark too)."""
    return check_file(
        sheet,
        layout or Layout(sheet, TARGET_COLUMNS),
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


def _changes(rec: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Whether writing the row changes the stored target's columns `stored` holds (a blank
    KEEP_IF_BLANK cell writes nothing)."""
    return any(rec[f] != v for f, v in stored.items() if rec[f] or f not in KEEP_IF_BLANK)


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
    """Import the target library; existing targets (same USCC) are updated, those the file
    holds as stored are left alone and counted as unchanged.

    Only columns present in the file are updated, so a file without 风险等级 keeps the levels
    already stored; see KEEP_IF_BLANK for blank cells. `progress(done, total)` is called as
    rows are written.
    """

    async def write(checked: Checked, progress: Progress | None) -> tuple[int, int]:
        table = _TARGETS
        present = [f for f in _TARGET_UPDATES if checked.layout.has(f)]
        conn = await core_connection(ctx.session)
        statements: dict[tuple[str, ...], Insert] = {}
        columns = [table.c.uscc, *(table.c[f] for f in present)]
        inserted = updated = done = 0
        total = len(checked.records)
        for chunk in chunks(checked.good()):
            found = await conn.execute(
                select(*columns).where(table.c.uscc.in_([r["uscc"] for r in chunk]))
            )
            stored = {row[0]: dict(zip(present, row[1:], strict=True)) for row in found}
            new = [r for r in chunk if r["uscc"] not in stored]
            changed = [r for r in chunk if r["uscc"] in stored and _changes(r, stored[r["uscc"]])]
            for blank, rows in _group_by_blanks(new + changed).items():
                if blank not in statements:
                    statements[blank] = upsert(
                        conn.dialect, table, ["uscc"], [f for f in present if f not in blank]
                    )
                await executemany(conn, statements[blank], rows)
            inserted, updated, done = inserted + len(new), updated + len(changed), done + len(chunk)
            if progress is not None:
                progress(done, total)
        expire_loaded(ctx.session, Target)
        return inserted, updated

    return await run_import(
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

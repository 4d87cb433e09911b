"""An existing county database upgrades in place: SQLite batch migrations rebuild tables that
other rows reference, and a failed upgrade leaves nothing half-altered."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import make_engine
from core.schema import upgrade

INITIAL = "30d30c97b533"
ROWS = [
    "INSERT INTO department (id, code, name, short_name, is_market_regulator) "
    "VALUES (1, 'SJ', '县市场监督管理局', '市场监管', 1)",
    "INSERT INTO item (id, department_id, code, name, category) "
    "VALUES (1, 1, 'SJ-01', '企业公示信息检查', 'key')",
    "INSERT INTO joint_task (id, code, year, title, lead_department_id, window_start, window_end,"
    " scope, rule, state, seed_hex, commitment, reply_due_provisional, created_at) VALUES"
    " (1, 'LJ-2026-001', 2026, '联合抽查', 1, '2026-03-02', '2026-03-31', '{}', '{}', 'drawn',"
    " '', '', 0, '2026-03-01 04:00:00.000000')",
    "INSERT INTO task_item (id, task_id, item_id, department_id) VALUES (1, 1, 1, 1)",
]


async def _first_revision_with_rows(path: Path, *extra: str) -> AsyncEngine:
    engine = make_engine(str(path))
    await upgrade(engine, INITIAL)
    async with engine.begin() as conn:
        for row in (*ROWS, *extra):
            await conn.execute(text(row))
    return engine


async def test_a_database_with_rows_upgrades_from_the_first_revision(tmp_path: Path) -> None:
    engine = await _first_revision_with_rows(tmp_path / "county.sqlite3")
    await upgrade(engine)
    async with engine.connect() as conn:
        names = (
            await conn.execute(
                text(
                    "SELECT d.name, i.name FROM task_item t JOIN item i ON i.id = t.item_id "
                    "JOIN department d ON d.id = t.department_id"
                )
            )
        ).all()
        assert names == [("县市场监督管理局", "企业公示信息检查")]
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    await engine.dispose()


async def test_a_failing_upgrade_changes_nothing(tmp_path: Path) -> None:
    # an index a later migration adds, made by hand: that migration fails …
    engine = await _first_revision_with_rows(
        tmp_path / "county.sqlite3", "CREATE INDEX ix_outbox_dest_sent ON outbox (dest_key)"
    )
    with pytest.raises(Exception, match="ix_outbox_dest_sent"):
        await upgrade(engine)
    async with engine.connect() as conn:  # … and leave the first revision as it was
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        columns = {r[1] for r in (await conn.execute(text("PRAGMA table_info(department)")))}
        tables = {
            r[0]
            for r in await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        }
    assert version == INITIAL and "scheduled_run" not in tables
    assert columns == {"id", "code", "name", "short_name", "is_market_regulator"}
    await engine.dispose()


async def test_a_case_part_starts_from_the_version_it_was_last_entered_in(tmp_path: Path) -> None:
    """谁检查、谁录入: each part keeps its own methods, follow-ups and remarks from revision
    7c4e2a9d1b63 on; an existing part takes them from the version it was last entered in,
    not from the latest one another department's entry made."""
    engine = make_engine(str(tmp_path / "county.sqlite3"))
    await upgrade(engine, "5e1d7c2b9a40")
    result = (
        "INSERT INTO case_result (id, case_id, version, edition, state, codes, methods, followups,"
        " followup_done, followup_done_on, remarks, is_correction, entered_by_id, entered_at)"
        " VALUES ({v}, 1, {v}, 1, 'part_entered', '[\"1\"]', '{methods}', '[\"无需后续处置\"]',"
        " 0, NULL, '{remarks}', 0, 1, '2026-03-10 04:00:00.000000')"
    )
    rows = [
        *ROWS[:3],
        "INSERT INTO officer (id, code, name, department_id, roles, cert_no, expertise, region,"
        " mobile, active) VALUES (1, 'A1', '张检查', 1, '[]', '', '[]', '', '', 1)",
        "INSERT INTO target (id, uscc, is_legacy_id, name, kind, industry, region, address,"
        " status, risk_level, flags) VALUES (1, '91330424MA28AQAQXU', 0, '某公司', '企业', '',"
        " '', '', '存续', '', '[]')",
        "INSERT INTO inspection_case (id, code, task_id, target_id, state,"
        " result_due_provisional) VALUES (1, 'LJ-2026-001-001', 1, 1, 'part_entered', 0)",
        result.format(v=1, methods='["实地检查", "检验检测"]', remarks="已抽样"),
        result.format(v=2, methods='["实地检查"]', remarks=""),
        "INSERT INTO case_part (id, case_id, department_id, state, version, entered_by_id,"
        " entered_at) VALUES (1, 1, 1, 'entered', 1, 1, '2026-03-10 04:00:00.000000')",
    ]
    async with engine.begin() as conn:
        for row in rows:
            await conn.execute(text(row))
    await upgrade(engine)
    async with engine.connect() as conn:
        part = (
            await conn.execute(
                text("SELECT methods, followups, followup_done, remarks FROM case_part")
            )
        ).one()
    assert tuple(part) == ('["实地检查", "检验检测"]', '["无需后续处置"]', 0, "已抽样")
    await engine.dispose()


async def test_an_upgraded_database_with_a_provisional_deadline_gets_the_recount_step(
    tmp_path: Path,
) -> None:
    """Migration d4b7e19a3c52: a provisional deadline stored before the fixed-date holidays
    were rest days leaves core.deadlines.run_upgrade_steps its recount; without one (the rows
    above, no provisional deadline) there is nothing to count again."""
    provisional = await _first_revision_with_rows(
        tmp_path / "provisional.sqlite3",
        "UPDATE joint_task SET reply_due_on = '2027-01-05', reply_due_provisional = 1",
    )
    plain = await _first_revision_with_rows(tmp_path / "plain.sqlite3")
    try:
        for engine, steps in ((provisional, ["recount_weekdays_only_provisional"]), (plain, [])):
            await upgrade(engine)
            async with engine.connect() as conn:
                found = (await conn.execute(text("SELECT name FROM upgrade_step"))).scalars()
                assert list(found) == steps
    finally:
        await provisional.dispose()
        await plain.dispose()

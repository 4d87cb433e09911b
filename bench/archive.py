"""Archive benchmark: 立卷归档 (004 第二十五条) of a county task of thousands of cases.

    python bench/archive.py [--cases 2000]

A fresh SQLite file with one published task of `--cases` cases between two departments (two
items), each case with a group of three, its notice served (a hash-chained audit event), a
published result and its correction (two versions, two item results each) and the reviews of
the first (inserted through the ORM, not timed). Then:
(1) floor: rendering every DOCX the archive holds (each notice as served, the record form of
    each version) from contexts already in memory: the work no archive can skip;
(2) archive: core.archive.closing.archive_task, what `lianjian export archive` runs (read,
    render, ZIP), rolled back; with its SQL statements counted, which no longer grow with the
    cases (the case-by-case archive ran ~8 per case and per version: ~40,000 for 5,000 cases).
Each also in the process's CPU time. The last line printed is one JSON object with
"archive_s", "floor_s", "ratio_to_floor" and "statements".
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from core.archive import closing
from core.changes import Ctx, record
from core.clock import FixedClock, china_noon
from core.db import make_engine, make_sessionmaker
from core.documents import render_docx, task_documents
from core.models import (
    Case,
    CaseResult,
    Department,
    Invitation,
    Item,
    ItemResult,
    JointTask,
    Officer,
    Review,
    Target,
    TaskItem,
)
from core.schema import upgrade
from tests.factories import group_members, valid_uscc

TASK = "LJ-2026-001"
ARCHIVED_ON = dt.date(2026, 7, 1)  # after the objection period of the last publication


async def build(path: Path, cases: int) -> None:
    """The task as the stages leave it (not timed)."""
    engine = make_engine(str(path))
    await upgrade(engine)
    clock = FixedClock(china_noon(dt.date(2026, 3, 5)))
    async with make_sessionmaker(engine)() as session:
        lead = Department(code="SJ", name="县市场监督管理局", is_market_regulator=True)
        other = Department(code="WJ", name="县卫生健康委员会", short_name="卫健")
        session.add_all([lead, other])
        await session.flush()
        officers = [
            Officer(
                code=f"{d.code}{n}",
                name=f"{d.code}检查{n}",
                department_id=d.id,
                roles=["inspector"],
                cert_no=f"ZF{d.code}{n}",
            )
            for d in (lead, other)
            for n in range(1, 4)
        ]
        liaison = Officer(code="SJL", name="联络员", department_id=lead.id, roles=["liaison"])
        items = [
            Item(department_id=lead.id, code="SJ-01", name="企业公示信息检查", category="key"),
            Item(department_id=other.id, code="WJ-01", name="公共场所卫生检查"),
        ]
        task = JointTask(
            code=TASK,
            year=2026,
            title="公共场所联合抽查",
            lead_department_id=lead.id,
            window_start=dt.date(2026, 3, 2),
            window_end=dt.date(2026, 3, 31),
            state="published",
            created_at=china_noon(dt.date(2026, 2, 20)),
        )
        targets = [Target(uscc=valid_uscc(n), name=f"嘉善县第{n}有限公司") for n in range(cases)]
        session.add_all([*officers, liaison, *items, task, *targets])
        await session.flush()
        session.add_all(
            TaskItem(task_id=task.id, item_id=i.id, department_id=i.department_id) for i in items
        )
        session.add(Invitation(task_id=task.id, department_id=other.id, state="accepted"))
        rows = [
            Case(
                code=f"{TASK}-{n + 1:04d}",
                task_id=task.id,
                target_id=t.id,
                state="corrected",
                inspected_on=dt.date(2026, 3, 10),
            )
            for n, t in enumerate(targets)
        ]
        session.add_all(rows)
        await session.flush()
        group_of = {}
        for n, case in enumerate(rows):
            group = [officers[n % 3], officers[(n + 1) % 3], officers[3 + n % 3]]
            group_of[case.id] = group
            session.add_all(group_members(case.id, group))
        published = china_noon(dt.date(2026, 3, 20))
        corrected = china_noon(dt.date(2026, 4, 2))
        versions = [
            CaseResult(
                case_id=case.id,
                version=version,
                edition=version,
                state="superseded" if version == 1 else "published",
                codes=["A", "2"] if version == 1 else ["1"],
                methods=["实地检查"],
                followups=["责令改正并跟踪"] if version == 1 else ["无需后续处置"],
                inspected_on=dt.date(2026, 3, 10),
                is_correction=version == 2,
                entered_by_id=group_of[case.id][0].id,
                entered_at=published if version == 1 else corrected,
                published_at=published if version == 1 else corrected,
            )
            for case in rows
            for version in (1, 2)
        ]
        session.add_all(versions)
        await session.flush()
        for r in versions:
            session.add_all(
                ItemResult(result_id=r.id, item_id=i.id, codes=r.codes, content="现场检查")
                for i in items
            )
            if r.version == 1:
                session.add_all(
                    Review(
                        result_id=r.id,
                        reviewer_id=liaison.id,
                        department_id=d.id,
                        decision="approve",
                        created_at=published,
                    )
                    for d in (lead, other)
                )
        ctx = Ctx(session=session, clock=clock)
        for case in rows:  # the notice served, as issue_notice records it
            group = group_of[case.id]
            inspectors = [
                {
                    "name": o.name,
                    "cert_no": o.cert_no,
                    "department": (lead if o.department_id == lead.id else other).name,
                    "is_leader": o is group[0],
                }
                for o in group
            ]
            data = {"via": "bench", "inspectors": inspectors, "planned_on": "2026-03-10"}
            await record(ctx, "case.notified", f"case:{case.code}", data)
        await session.commit()
    await engine.dispose()


async def measure(path: Path) -> dict[str, Any]:
    engine = make_engine(str(path))
    maker = make_sessionmaker(engine)
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    async with maker() as session:
        ctx = Ctx(session=session, clock=FixedClock(china_noon(ARCHIVED_ON)))
        task = await session.scalar(select(JointTask).where(JointTask.code == TASK))
        assert task is not None
        cases = list(await session.scalars(select(Case).where(Case.task_id == task.id)))
        loaded = await task_documents(ctx, task, cases)
        wall, cpu = time.perf_counter(), time.process_time()
        documents = 0
        for case in cases:
            context = loaded.context(case)
            for notice in loaded.notices(case):
                render_docx("notice", notice.context(context), ctx.clock.now())
                documents += 1
            for version in loaded.versions(case):
                render_docx("record", loaded.context(case, version), ctx.clock.now())
                documents += 1
        floor, floor_cpu = time.perf_counter() - wall, time.process_time() - cpu
        await session.rollback()

    async with maker() as session:
        ctx = Ctx(session=session, clock=FixedClock(china_noon(ARCHIVED_ON)))
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        wall, cpu = time.perf_counter(), time.process_time()
        data, _, _ = await closing.archive_task(ctx, TASK)
        archive, archive_cpu = time.perf_counter() - wall, time.process_time() - cpu
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        await session.rollback()
    await engine.dispose()
    return {
        "documents": documents,
        "zip_bytes": len(data),
        "statements": statements,
        "floor_s": round(floor, 2),
        "archive_s": round(archive, 2),
        "ratio_to_floor": round(archive / floor, 2),
        "floor_cpu_s": round(floor_cpu, 2),
        "archive_cpu_s": round(archive_cpu, 2),
        "cpu_ratio_to_floor": round(archive_cpu / floor_cpu, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        start = time.perf_counter()
        asyncio.run(build(path, args.cases))
        print(
            f"setup: a task of {args.cases} cases, {time.perf_counter() - start:.1f} s (not timed)"
        )
        result = asyncio.run(measure(path))
    print(
        f"floor: {result['documents']} DOCX rendered from memory in {result['floor_s']} s "
        f"(CPU {result['floor_cpu_s']} s)"
    )
    print(
        f"archive: {result['archive_s']} s = {result['ratio_to_floor']}x floor "
        f"(CPU {result['cpu_ratio_to_floor']}x), {result['statements']} SQL statements, "
        f"{result['zip_bytes']:,} bytes"
    )
    print(json.dumps({"cases": args.cases, **result}, ensure_ascii=False))


if __name__ == "__main__":
    main()

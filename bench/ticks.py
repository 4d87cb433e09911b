"""Scheduler tick benchmark: the nudge tick and the leaders' summaries at county-year scale.

    python bench/ticks.py [--cases 100000] [--due 2000] [--runs 5]

A fresh SQLite file with 20 departments (a liaison, a leader and 10 inspectors each), 20 tasks
in inspection, each led by one department and joined by two others, and `--cases` open cases
with two inspectors each; `--due` of them are due today, the rest later (bulk-inserted, not
timed). Then, median of runs:
(1) floor: a bare indexed SELECT of the cases due today, through the same async engine;
(2) tick: core.nudges.enqueue_nudges (what is due for whom, digests, audit, outbox),
    rolled back after each run so every run does the full work. Target: ≤ 1 s and ≤ 10× floor;
(3) summary: core.summary.enqueue_daily_summaries, what the summary tick does: every
    leader's scoped summary text, each department's PNG chart (20 departments), stored and
    queued, rolled back after each run. Target: ≤ 2 s.
Each also in the process's CPU time (what the code costs when other work shares the machine).
The last line printed is one JSON object with "tick_s", "tick_ratio_to_floor" and "summary_s"
(wall medians), and the CPU figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, func, select

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.db import make_engine, make_sessionmaker
from core.models import Case, Department, GroupMember, JointTask, Officer, StoredImage, Target
from core.nudges import enqueue_nudges
from core.schema import upgrade
from core.summary import enqueue_daily_summaries

TODAY = dt.date(2026, 12, 7)  # a Monday
DEPARTMENTS = 20


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _lead(case: int, per_task: int) -> int:
    return 1 + (case - 1) // per_task


def _partner(case: int, per_task: int) -> int:
    """Each task is joined by the next two departments (a county task has a handful)."""
    return 1 + (_lead(case, per_task) + case % 2) % DEPARTMENTS


def fill(path: Path, cases: int, due: int) -> None:
    """Bulk insert with SQLAlchemy Core on the plain driver (setup, not timed)."""
    engine = create_engine(f"sqlite:///{path}")
    per_task = cases // DEPARTMENTS
    later = TODAY + dt.timedelta(days=40)
    with engine.begin() as conn:
        conn.execute(
            _table(Department).insert(),
            [
                {"id": d, "code": f"D{d:02d}", "name": f"县第{d}部门"}
                for d in range(1, DEPARTMENTS + 1)
            ],
        )
        conn.execute(
            _table(Officer).insert(),
            [
                {
                    "id": d * 100 + n,
                    "code": f"P{d:02d}{n:02d}",
                    "name": f"人员{d}-{n}",
                    "department_id": d,
                    "roles": ["liaison"] if n == 0 else ["leader"] if n == 1 else ["inspector"],
                    "cert_no": f"ZF{d:02d}{n:02d}",
                }
                for d in range(1, DEPARTMENTS + 1)
                for n in range(12)
            ],
        )
        conn.execute(
            _table(JointTask).insert(),
            [
                {
                    "id": d,
                    "code": f"LJ-2026-{d:03d}",
                    "year": 2026,
                    "title": f"联合抽查{d}",
                    "lead_department_id": d,
                    "window_start": dt.date(2026, 10, 8),
                    "window_end": dt.date(2026, 11, 30),
                    "state": "inspecting",
                    "created_at": china_noon(dt.date(2026, 10, 8)),
                }
                for d in range(1, DEPARTMENTS + 1)
            ],
        )
        conn.execute(
            _table(Target).insert(),
            [
                {"id": i, "uscc": f"91330000{i:010d}", "name": f"企业{i}"}
                for i in range(1, cases + 1)
            ],
        )
        conn.execute(
            _table(Case).insert(),
            [
                {
                    "id": i,
                    "code": f"LJ-2026-{1 + (i - 1) // per_task:03d}-{i:05d}",
                    "task_id": 1 + (i - 1) // per_task,
                    "target_id": i,
                    "state": "inspected",
                    "inspected_on": dt.date(2026, 11, 9),
                    "result_due_on": TODAY if i <= due else later,
                }
                for i in range(1, cases + 1)
            ],
        )
        conn.execute(
            _table(GroupMember).insert(),
            [
                {
                    "case_id": i,
                    "officer_id": dept * 100 + 2 + i % 10,
                    "department_id": dept,
                    "is_leader": lead,
                }
                for i in range(1, cases + 1)
                for dept, lead in ((_lead(i, per_task), True), (_partner(i, per_task), False))
            ],
        )
    engine.dispose()


async def median_s(fn: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time of the process (all its threads, the database
    driver's included): on a shared machine the CPU time says what the code costs."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        await fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


async def measure(path: Path, runs: int) -> dict[str, float]:
    engine = make_engine(str(path))
    maker = make_sessionmaker(engine)
    clock = FixedClock(china_noon(TODAY))
    async with maker() as session:
        ctx = Ctx(session=session, clock=clock)

        async def floor() -> None:
            cases = Case.__table__
            (await session.execute(select(cases).where(cases.c.result_due_on == TODAY))).all()

        async def tick() -> None:
            await enqueue_nudges(ctx, TODAY)
            await session.rollback()

        async def summaries() -> None:
            assert await enqueue_daily_summaries(ctx, TODAY) == DEPARTMENTS
            charts = await session.scalar(select(func.count()).select_from(StoredImage))
            assert charts == DEPARTMENTS  # without a CJK font this is no measure of charts
            await session.rollback()

        await floor()  # warm the page cache and the statement cache alike
        (t_floor, c_floor), (t_tick, c_tick) = (
            await median_s(floor, runs),
            await median_s(tick, runs),
        )
        t_summary, c_summary = await median_s(summaries, max(1, runs // 2))
    await engine.dispose()
    return {
        "floor_s": round(t_floor, 4),
        "tick_s": round(t_tick, 3),
        "tick_ratio_to_floor": round(t_tick / t_floor, 1),
        "summary_s": round(t_summary, 3),
        "tick_cpu_ratio_to_floor": round(c_tick / c_floor, 1),
        "summary_cpu_s": round(c_summary, 3),
    }


async def migrate(path: Path) -> None:
    engine = make_engine(str(path))
    await upgrade(engine)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ticks.sqlite3"
        asyncio.run(migrate(path))
        start = time.perf_counter()
        fill(path, args.cases, args.due)
        print(
            f"setup: {args.cases} open cases, {args.due} due today, in "
            f"{time.perf_counter() - start:.1f} s (not timed)"
        )
        result = asyncio.run(measure(path, args.runs))
    print(f"floor (indexed SELECT of today's due cases): {result['floor_s']} s")
    print(
        f"nudge tick: {result['tick_s']} s = {result['tick_ratio_to_floor']}x floor "
        f"(target <= 1 s and <= 10x); in CPU time {result['tick_cpu_ratio_to_floor']}x"
    )
    print(
        f"summaries with charts, {DEPARTMENTS} departments: {result['summary_s']} s "
        f"(target <= 2 s); CPU {result['summary_cpu_s']} s"
    )
    print(json.dumps({"cases": args.cases, "due": args.due, **result}))


if __name__ == "__main__":
    main()

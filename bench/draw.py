"""Draw benchmark: the pure selection against its floor, and the full DB path at city scale.

    python bench/draw.py [--targets 1000000] [--runs 3]

(1) algorithm.select over 1,000,000 candidates in 3 strata at 5 % against the floor: one bare loop
    hashing every candidate once with hashlib.sha256 (no selection can do less). Median of runs.
(2) A fresh SQLite file with 1,000,000 targets (bulk-inserted, not timed), imported exclusions
    and deregistered targets; for each run a new task ready to draw, then freeze_pool +
    confirm_draw + commit are timed: pool query with scope and exclusions, pool hash and file,
    selection, lock and 50,000 cases. Target: ≤ 6 s.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.changes import Ctx
from core.clock import CHINA_TZ, FixedClock, china_noon
from core.consultation import creation, opening
from core.db import make_engine, make_sessionmaker
from core.draws import algorithm, targets
from core.models import Department, Item, Officer
from core.schema import upgrade
from tests.factories import valid_uscc

STRATA = ("D", "C", "B")  # risk classes; everything else (A, unclassified) falls in the third
RULE = {
    "strata": [
        {"name": "高风险", "risk_levels": ["D"], "ratio": "0.05"},
        {"name": "较高风险", "risk_levels": ["C"], "ratio": "0.05"},
        {"name": "其他", "ratio": "0.05"},
    ]
}
BEACON_SOURCE = "2026年3月3日福彩3D开奖号码"
BEACON_PUBLISHED = dt.datetime(2026, 3, 3, 21, 40, tzinfo=CHINA_TZ)


def median_time(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def uscc(n: int) -> str:
    """Candidate n's USCC, the candidates spread over a thousand regions."""
    return valid_uscc(n, f"{330000 + n % 1000:06d}")


def pure(n: int, runs: int) -> dict[str, float]:
    pool = [(uscc(i), ("高风险", "较高风险", "其他")[i % 3]) for i in range(n)]
    rule = algorithm.parse_rule(RULE)
    seed = algorithm.final_seed(bytes(range(32)), "beacon")
    encoded = [i.encode() for i, _ in pool]

    def floor() -> None:
        sha = hashlib.sha256
        for e in encoded:
            sha(seed + e).digest()

    t_floor = median_time(floor, runs)
    t_select = median_time(lambda: algorithm.select(pool, rule, seed, "LJ-2026-001"), runs)
    return {
        "select_s": round(t_select, 3),
        "floor_s": round(t_floor, 3),
        "ratio_to_floor": round(t_select / t_floor, 2),
    }


def fill_targets(path: Path, n: int) -> None:
    """Bulk insert with the plain driver (setup, not timed)."""
    con = sqlite3.connect(path)
    risk = ("D", "C", "B", "A", "")
    status = ["存续"] * 97 + ["停业", "注销", "吊销"]
    rows = (
        (
            uscc(i),
            f"企业{i}",
            "企业" if i % 10 else "个体工商户",
            "餐饮",
            f"镇{i % 20}",
            f"路{i}号",
            status[i % 100],
            risk[i % 5],
            "投诉举报" if i % 50 == 0 else "",
        )
        for i in range(n)
    )
    con.executemany(
        "INSERT INTO target (uscc, is_legacy_id, name, kind, industry, region, address,"
        " status, risk_level, flags) VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    con.executemany(
        "INSERT INTO exclusion (year, uscc, department_id, source, reason)"
        " VALUES (2026, ?, NULL, '市局', '')",
        ((uscc(i),) for i in range(0, n, 37)),
    )
    con.commit()
    con.close()


async def db_path(path: Path, runs: int) -> dict[str, Any]:
    engine = make_engine(str(path))
    maker = make_sessionmaker(engine)
    clock = FixedClock(china_noon(dt.date(2026, 3, 2)))
    async with maker() as session:
        lead = Department(code="SCJG", name="县市场监督管理局")
        session.add(lead)
        await session.flush()
        item = Item(department_id=lead.id, code="SX01", name="登记事项检查")
        session.add_all(
            [
                item,
                *(
                    Officer(
                        code=f"P{i:03d}",
                        name=f"人员{i}",
                        department_id=lead.id,
                        roles=["inspector"],
                    )
                    for i in range(20)
                ),
                # a task's lead department needs someone to run its draw (jointtask.answerers)
                Officer(code="P900", name="联络员", department_id=lead.id, roles=["liaison"]),
            ]
        )
        await session.commit()
    times, figures = [], {}
    for run in range(runs):
        async with maker() as session:
            ctx = Ctx(session=session, clock=clock)
            task = await creation.create_task(
                ctx,
                title=f"基准任务{run}",
                lead_department_id=lead.id,
                window_start=dt.date(2026, 3, 16),
                window_end=dt.date(2026, 6, 30),
                item_ids=[item.id],
                scope={"kinds": ["企业"]},
                rule=RULE,
            )
            await opening.open_consultation(ctx, task, [], single_department=True)
            await session.commit()
            clock.set(china_noon(dt.date(2026, 3, 2)))
            start = time.perf_counter()
            frozen = await targets.freeze_pool(ctx, task.code, BEACON_SOURCE)
            t_freeze = time.perf_counter() - start
            clock.set(BEACON_PUBLISHED)  # the beacon may be entered only once it is public
            start = time.perf_counter()
            locked = await targets.confirm_draw(ctx, task.code, "4 1 7")
            await session.commit()
            times.append(t_freeze + time.perf_counter() - start)
            figures = {
                "pool_size": frozen.pool_size,
                "selected": len(locked.selection),
                "freeze_s": round(t_freeze, 3),
                "exclusions": frozen.parameters["exclusions"],
            }
            print(
                f"  run {run + 1}: freeze {t_freeze:.2f} s, "
                f"freeze+confirm+commit {times[-1]:.2f} s,"
                f" pool {frozen.pool_size}, selected {len(locked.selection)}"
            )
    await engine.dispose()
    return {"db_path_s": round(statistics.median(times), 3), **figures}


async def migrate(path: Path) -> None:
    engine = make_engine(str(path))
    await upgrade(engine)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = pure(args.targets, args.runs)
    print(
        f"pure: algorithm.select {result['select_s']} s, floor {result['floor_s']} s,"
        f" ratio {result['ratio_to_floor']}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        asyncio.run(migrate(path))
        start = time.perf_counter()
        fill_targets(path, args.targets)
        print(
            f"setup: {args.targets} targets inserted in "
            f"{time.perf_counter() - start:.1f} s (not timed)"
        )
        result |= asyncio.run(db_path(path, args.runs))
    print(f"db path: freeze_pool + confirm_draw median {result['db_path_s']} s (target ≤ 6 s)")
    print(json.dumps({"targets": args.targets, **result}, ensure_ascii=False))


if __name__ == "__main__":
    main()

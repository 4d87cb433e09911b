"""Benchmark: import a 100,000-row target CSV into a fresh SQLite file.

    python bench/imports.py [--rows 100000] [--runs 3]

Each run migrates a new SQLite file (core.schema.upgrade), imports the CSV through
core.imports.import_targets and commits. Two baselines are measured in the same run on the same
file: parsing + checking the CSV without a database (the work every import must do), and a raw
sqlite3 executemany of the already-checked rows (the cheapest possible write). The last line
printed is one JSON object; "rows_per_s" is the median over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.db import make_engine, make_sessionmaker
from core.imports import TARGET_COLUMNS, check_targets, import_targets, read_sheet
from core.models import TARGET_FLAGS, TARGET_KINDS
from core.schema import upgrade
from core.uscc import ALPHABET, make_uscc

HEADER = ["统一社会信用代码", "名称", "类型", "行业", "区域", "地址", "状态", "风险等级", "标记"]
INDUSTRIES = ("餐饮服务", "食品销售", "批发零售", "住宿", "建筑施工", "道路运输", "药品零售", "加油站")
TOWNS = ("城关镇", "东山镇", "西河乡", "南湖街道", "北岭乡", "新区")
STATUSES = ("存续",) * 12 + ("在业", "开业", "停业", "注销", "吊销")
RISKS = ("", "A", "B", "B", "B", "C", "D", "低风险", "一般风险")


def make_csv(path: Path, rows: int, seed: int = 20260302) -> None:
    """A county-or-city sized library with unique, valid codes and realistic cell variety."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i in range(rows):
            org = "".join(rng.choice(ALPHABET) for _ in range(3)) + f"{i:06d}"  # unique per row
            uscc = make_uscc(f"91{rng.choice(('330424', '330402', '330421'))}{org}")
            flags = "、".join(rng.sample(TARGET_FLAGS, k=rng.choice((0, 0, 0, 0, 1, 2))))
            out.writerow([uscc, f"示例{rng.choice(INDUSTRIES)}有限公司{i}",
                          rng.choice(TARGET_KINDS[:3]), rng.choice(INDUSTRIES), rng.choice(TOWNS),
                          f"{rng.choice(TOWNS)}人民路 {rng.randint(1, 999)} 号",
                          rng.choice(STATUSES), rng.choice(RISKS), flags])


async def import_once(csv_path: Path, db_path: Path) -> tuple[float, int]:
    engine = make_engine(str(db_path))
    await upgrade(engine)
    clock = FixedClock(china_noon(dt.date(2026, 3, 2)))
    try:
        async with make_sessionmaker(engine)() as session:
            start = time.perf_counter()
            report = await import_targets(Ctx(session=session, clock=clock), csv_path)
            await session.commit()
            elapsed = time.perf_counter() - start
    finally:
        await engine.dispose()
    if not report.ok:
        raise SystemExit(report.summary_zh())
    return elapsed, report.inserted


def parse_and_check(csv_path: Path) -> list[dict[str, object]]:
    checked = check_targets(read_sheet(csv_path, TARGET_COLUMNS))
    if checked.bad:
        raise SystemExit(f"generated file has bad rows: {list(checked.bad)[:5]}")
    return checked.good()


def raw_executemany(db_path: Path, template: Path, records: list[dict[str, object]]) -> float:
    """Plain stdlib sqlite3 INSERTs into the same migrated schema, same pragmas as the app."""
    db_path.write_bytes(template.read_bytes())
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    cols = list(records[0])
    sql = f"INSERT INTO target ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    start = time.perf_counter()
    conn.executemany(sql, [tuple(r[c] for c in cols) for r in records])
    conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        csv_path = tmp / "targets.csv"
        make_csv(csv_path, args.rows)
        print(f"generated {args.rows} rows, {csv_path.stat().st_size / 1e6:.1f} MB")

        template = tmp / "empty.sqlite3"
        asyncio.run(_migrated(template))
        records = parse_and_check(csv_path)
        # Interleaved, so the import and its baselines see the same machine load in each run.
        imports, parses, raws = [], [], []
        for run in range(args.runs):
            parses.append(timed(lambda: parse_and_check(csv_path)))
            elapsed, inserted = asyncio.run(import_once(csv_path, tmp / f"run{run}.sqlite3"))
            assert inserted == args.rows
            imports.append(elapsed)
            raws.append(raw_executemany(tmp / f"raw{run}.sqlite3", template, records))
            print(f"run {run + 1}: import {elapsed:.2f} s ({args.rows / elapsed:,.0f} rows/s), "
                  f"parse + check only {parses[-1]:.2f} s, raw executemany {raws[-1]:.2f} s")

    rows_per_s = args.rows / statistics.median(imports)
    parse_rows_per_s = args.rows / statistics.median(parses)
    raw_rows_per_s = args.rows / statistics.median(raws)
    print(json.dumps({
        "bench": "imports.targets.sqlite",
        "rows": args.rows,
        "runs": args.runs,
        "rows_per_s": round(rows_per_s),
        "import_seconds": [round(x, 3) for x in imports],
        "baseline": "parse_and_check_without_db",
        "baseline_rows_per_s": round(parse_rows_per_s),
        "ratio_to_baseline": round(rows_per_s / parse_rows_per_s, 3),
        "raw_executemany_rows_per_s": round(raw_rows_per_s),
        "ratio_to_raw_executemany": round(rows_per_s / raw_rows_per_s, 3),
        "target_rows_per_s": 20_000,
        "meets_target": rows_per_s >= 20_000,
    }, ensure_ascii=False))


async def _migrated(path: Path) -> None:
    engine = make_engine(str(path))
    await upgrade(engine)
    await engine.dispose()


if __name__ == "__main__":
    main()

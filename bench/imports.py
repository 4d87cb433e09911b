"""Benchmark: import a 100,000-row target CSV into a fresh SQLite file, then a county's
inspector library (5,000 officers) and annual plan (200 rows).

    python bench/imports.py [--rows 100000] [--runs 3] [--inspectors 5000] [--plan-rows 200]

Each run migrates a new SQLite file (core.schema.upgrade), imports the CSV through
core.imports.targets.import_targets and commits. Two baselines are measured in the same run on
the same file: parsing + checking the CSV without a database (the work every import must do),
and a raw sqlite3 executemany of the already-checked rows (the cheapest possible write). The
last line printed is one JSON object; "rows_per_s" is the median over the runs. The inspector
and plan imports run on a database holding 20 departments and their item lists (imported first,
not timed); their baseline is reading the file alone (read_sheet), and each reports rows/s.
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
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.db import make_engine, make_sessionmaker
from core.imports import annual_plan
from core.imports.departments import import_departments
from core.imports.flow import ImportReport
from core.imports.inspectors import INSPECTOR_COLUMNS, import_inspectors
from core.imports.items import import_items
from core.imports.reading import read_sheet
from core.imports.targets import TARGET_COLUMNS, check_targets, import_targets
from core.models import TARGET_FLAGS, TARGET_KINDS
from core.schema import upgrade
from core.uscc import ALPHABET, make_uscc

HEADER = ["统一社会信用代码", "名称", "类型", "行业", "区域", "地址", "状态", "风险等级", "标记"]
INDUSTRIES = (
    "餐饮服务",
    "食品销售",
    "批发零售",
    "住宿",
    "建筑施工",
    "道路运输",
    "药品零售",
    "加油站",
)
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
            out.writerow(
                [
                    uscc,
                    f"示例{rng.choice(INDUSTRIES)}有限公司{i}",
                    rng.choice(TARGET_KINDS[:3]),
                    rng.choice(INDUSTRIES),
                    rng.choice(TOWNS),
                    f"{rng.choice(TOWNS)}人民路 {rng.randint(1, 999)} 号",
                    rng.choice(STATUSES),
                    rng.choice(RISKS),
                    flags,
                ]
            )


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


DEPARTMENTS = 20
ITEMS_PER_DEPARTMENT = 3
Importer = Callable[[Ctx, Path], Awaitable[ImportReport]]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(rows)
    return path


def make_library_files(tmp: Path, inspectors: int, plan_rows: int) -> dict[str, Path]:
    """Departments, items, an inspector library and an annual plan that fit together."""
    rng = random.Random(7)
    codes = [f"D{n:02d}" for n in range(DEPARTMENTS)]
    return {
        "departments": _write(
            tmp / "departments.csv", ["部门编码", "部门名称"], [[c, f"县第{c}局"] for c in codes]
        ),
        "items": _write(
            tmp / "items.csv",
            ["部门", "事项编码", "事项名称", "事项类别", "抽查比例上限"],
            [
                [
                    c,
                    f"{c}-{i}",
                    f"{c} 事项 {i}",
                    "重点" if i == 0 else "一般",
                    "" if i == 0 else "10%",
                ]
                for c in codes
                for i in range(ITEMS_PER_DEPARTMENT)
            ],
        ),
        "inspectors": _write(
            tmp / "inspectors.csv",
            [c.label for c in INSPECTOR_COLUMNS],
            [
                [
                    f"人员{n}",
                    codes[n % DEPARTMENTS],
                    f"ZF{n:07d}",
                    f"P{n:06d}",
                    "食品、特种设备",
                    rng.choice(TOWNS),
                    f"139{n:08d}",
                    "执法检查人员" if n % 10 else "执法检查人员、联络员",
                    f"wx{n}" if n % 3 == 0 else "",
                    "",
                    "在岗",
                ]
                for n in range(inspectors)
            ],
        ),
        "plan": _write(
            tmp / "plan.csv",
            [c.label for c in annual_plan.PLAN_COLUMNS],
            [
                [
                    f"JH-2026-{n:03d}",
                    f"联合抽查 {n}",
                    codes[n % DEPARTMENTS],
                    "、".join(codes[(n + k) % DEPARTMENTS] for k in (1, 2)),
                    f"{codes[n % DEPARTMENTS]}-0、{codes[(n + 1) % DEPARTMENTS]}-1",
                    "餐饮服务、企业",
                    rng.choice(("3%", "5%", "30户")),
                    str(n % 12 + 1),
                ]
                for n in range(plan_rows)
            ],
        ),
    }


async def library_once(files: dict[str, Path], db_path: Path) -> dict[str, float]:
    """Seconds for the inspector and the plan import on a fresh file with departments + items."""
    engine = make_engine(str(db_path))
    await upgrade(engine)
    clock = FixedClock(china_noon(dt.date(2026, 3, 2)))
    steps: list[tuple[str, Importer]] = [
        ("departments", import_departments),
        ("items", import_items),
        ("inspectors", import_inspectors),
        ("plan", annual_plan.import_plan),
    ]
    seconds: dict[str, float] = {}
    try:
        for kind, importer in steps:
            async with make_sessionmaker(engine)() as session:
                start = time.perf_counter()
                report = await importer(Ctx(session=session, clock=clock), files[kind])
                await session.commit()
                seconds[kind] = time.perf_counter() - start
            if not report.ok:
                raise SystemExit(report.summary_zh())
    finally:
        await engine.dispose()
    return seconds


def library_figures(
    files: dict[str, Path], tmp: Path, runs: int, rows: dict[str, int]
) -> dict[str, object]:
    timings: dict[str, list[float]] = {"inspectors": [], "plan": []}
    reads: dict[str, list[float]] = {"inspectors": [], "plan": []}
    columns = {"inspectors": INSPECTOR_COLUMNS, "plan": annual_plan.PLAN_COLUMNS}
    for run in range(runs):
        seconds = asyncio.run(library_once(files, tmp / f"library{run}.sqlite3"))
        for kind in timings:
            timings[kind].append(seconds[kind])
            reads[kind].append(timed(lambda kind=kind: read_sheet(files[kind], columns[kind])))
        print(
            f"run {run + 1}: inspectors {seconds['inspectors']:.2f} s, plan {seconds['plan']:.3f} s"
        )
    figures: dict[str, object] = {}
    for kind, values in timings.items():
        median, read = statistics.median(values), statistics.median(reads[kind])
        figures[kind] = {
            "rows": rows[kind],
            "seconds": round(median, 3),
            "rows_per_s": round(rows[kind] / median),
            "baseline": "read_sheet_only",
            "ratio_to_baseline": round(read / median, 3),
        }
    return figures


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--inspectors", type=int, default=5_000)
    parser.add_argument("--plan-rows", type=int, default=200)
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
            print(
                f"run {run + 1}: import {elapsed:.2f} s ({args.rows / elapsed:,.0f} rows/s), "
                f"parse + check only {parses[-1]:.2f} s, raw executemany {raws[-1]:.2f} s"
            )
        library = library_figures(
            make_library_files(tmp, args.inspectors, args.plan_rows),
            tmp,
            args.runs,
            {"inspectors": args.inspectors, "plan": args.plan_rows},
        )

    rows_per_s = args.rows / statistics.median(imports)
    parse_rows_per_s = args.rows / statistics.median(parses)
    raw_rows_per_s = args.rows / statistics.median(raws)
    print(
        json.dumps(
            {
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
                **library,
            },
            ensure_ascii=False,
        )
    )


async def _migrated(path: Path) -> None:
    engine = make_engine(str(path))
    await upgrade(engine)
    await engine.dispose()


if __name__ == "__main__":
    main()

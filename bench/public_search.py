"""Page benchmark: the public results search over 100,000 published results, over loopback.

    python bench/public_search.py [--results 100000] [--requests 400] [--rounds 3] [--concurrency 4]
                          [--rate 20] [--paced-seconds 15]

Full: the public pages (bot.pages.public on the real Services, SQLite file) in a child process;
floor: a bare aiohttp handler answering a small fixed HTML page in another child process. The
client (this process) sends a mix of searches — name fragments, 统一社会信用代码, year filters,
later pages — at fixed concurrency, one server at a time, in alternating rounds (throughput,
and latency with a queue of `concurrency` requests); then at a paced 20 searches/s (p99 without
self-made queueing: what a visitor waits on a busy day). Target: search p99 < 200 ms on SQLite.
The ratio is full/floor requests per second (median of
the per-round ratios). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.callbacks import Server, wait_ready

RESULTS = 100_000
CORRECTED = 0.05  # share of cases whose published result was corrected (two versions)
YEARS = (2024, 2025, 2026)
TASKS_PER_YEAR = 10
WORDS = ("食品", "餐饮", "建材", "五金", "服装", "药房", "酒店", "物流", "电子", "农资")


def _uscc(n: int) -> str:
    from core.uscc import check_char

    body = f"91330424{n:09d}"
    return body + check_char(body)


def _name(n: int) -> str:
    return f"嘉善县{WORDS[n % len(WORDS)]}{n}号商贸有限公司"


async def build_database(url: str, n: int = RESULTS) -> None:
    """n targets, each with one case and a published result (5 % corrected), in 30 tasks."""
    from sqlalchemy import insert

    from core.db import make_engine
    from core.models import Case, CaseResult, Department, JointTask, Officer, Target
    from core.schema import upgrade

    engine = make_engine(url)
    await upgrade(engine)
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(Department),
            [
                {
                    "id": 1,
                    "code": "SJ",
                    "name": "县市场监督管理局",
                    "short_name": "市场监管",
                    "is_market_regulator": True,
                }
            ],
        )
        await conn.execute(
            insert(Officer),
            [{"id": 1, "code": "A1", "name": "张检查", "department_id": 1, "roles": ["inspector"]}],
        )
        tasks = [
            {
                "id": i + 1,
                "code": f"LJ-{y}-{t + 1:03d}",
                "year": y,
                "title": f"{y}年第{t + 1}批联合抽查",
                "lead_department_id": 1,
                "window_start": dt.date(y, 3, 1),
                "window_end": dt.date(y, 6, 30),
                "state": "published",
                "created_at": now,
            }
            for i, (y, t) in enumerate((y, t) for y in YEARS for t in range(TASKS_PER_YEAR))
        ]
        await conn.execute(insert(JointTask), tasks)
        await conn.execute(
            insert(Target), [{"id": i + 1, "uscc": _uscc(i), "name": _name(i)} for i in range(n)]
        )
        await conn.execute(
            insert(Case),
            [
                {
                    "id": i + 1,
                    "code": f"{tasks[i % len(tasks)]['code']}-{i:06d}",
                    "task_id": tasks[i % len(tasks)]["id"],
                    "target_id": i + 1,
                    "state": "published",
                    "inspected_on": dt.date(2026, 4, 1),
                }
                for i in range(n)
            ],
        )
        rows: list[dict[str, Any]] = []
        for i in range(n):
            at = now - dt.timedelta(minutes=i)
            corrected = i % int(1 / CORRECTED) == 0
            base = {
                "case_id": i + 1,
                "codes": ["1"],
                "methods": ["实地检查"],
                "followups": ["无需后续处置"],
                "entered_by_id": 1,
                "entered_at": at,
            }
            rows.append(
                {
                    **base,
                    "version": 1,
                    "published_at": at,
                    "state": "superseded" if corrected else "published",
                }
            )
            if corrected:
                rows.append(
                    {
                        **base,
                        "version": 2,
                        "published_at": at + dt.timedelta(days=1),
                        "state": "published",
                        "is_correction": True,
                    }
                )
        await conn.execute(insert(CaseResult), rows)
    await engine.dispose()


def serve_full(port: int, url: str) -> None:
    from bot.config import load_settings
    from bot.pages.public import routes
    from bot.services import SERVICES, Services
    from core.clock import SystemClock
    from core.db import make_engine, make_sessionmaker

    settings = load_settings(database_url=url, link_secret="b" * 40)
    services = Services(
        settings=settings,
        sessionmaker=make_sessionmaker(make_engine(url)),
        clock=SystemClock(),
        rules=settings.rules,
        link_secret=b"b" * 40,
        public_base_url=f"http://127.0.0.1:{port}",
    )
    app = web.Application()
    app[SERVICES] = services
    app.add_routes(routes(services))
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_floor(port: int) -> None:
    page = "<!doctype html><title>x</title><p>" + "结果" * 500

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/public/results", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def queries(n: int, total: int, rng: random.Random) -> list[dict[str, str]]:
    """A visitor's mix: a name fragment, an exact code, a year, a later page, a common word."""
    out = []
    for _ in range(n):
        i = rng.randrange(total)
        kind = rng.randrange(5)
        out.append(
            [
                {"q": f"{WORDS[i % len(WORDS)]}{i}号"},
                {"q": _uscc(i)},
                {"year": str(rng.choice(YEARS))},
                {"year": str(rng.choice(YEARS)), "page": str(rng.randrange(1, 50))},
                {"q": rng.choice(WORDS)},
            ][kind]
        )
    return out


async def burst(
    url: str, items: list[dict[str, str]], concurrency: int, check: bool
) -> tuple[float, list[float]]:
    todo = iter(items)
    latencies: list[float] = []

    async def worker(http: aiohttp.ClientSession) -> None:
        for params in todo:
            start = time.perf_counter()
            async with http.get(url, params=params) as resp:
                body = await resp.text()
                if resp.status != 200 or (check and "检查结果" not in body):
                    raise RuntimeError(f"search {params} answered {resp.status}")
            latencies.append(time.perf_counter() - start)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies


async def paced(url: str, items: list[dict[str, str]], rate: float) -> list[float]:
    """Open loop: search i starts at i / rate seconds, whatever the earlier ones are doing."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        start = time.perf_counter()

        async def one(i: int, params: dict[str, str]) -> float:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            began = time.perf_counter()
            async with http.get(url, params=params) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"search {params} answered {resp.status}")
            return time.perf_counter() - began

        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(items))))


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


async def measure(servers: dict[str, Server], args: argparse.Namespace) -> dict[str, Any]:
    """Alternating rounds, the server not under test paused (SIGSTOP)."""
    for server in servers.values():
        await wait_ready(server.base + "/public/results")
    rng = random.Random(7)
    rps: dict[str, list[float]] = {name: [] for name in servers}
    latencies: list[float] = []
    for r in range(args.rounds):
        items = queries(args.requests, args.results, rng)
        for name, server in servers.items():
            for other in servers.values():
                (other.resume if other is server else other.pause)()
            got, lat = await burst(
                server.base + "/public/results", items, args.concurrency, check=name == "full"
            )
            rps[name].append(got)
            if name == "full":
                latencies += lat
            print(f"round {r + 1} {name:>5}: {got:8.0f} req/s", flush=True)
    for server in servers.values():
        server.resume()
    servers["floor"].pause()
    steady = await paced(
        servers["full"].base + "/public/results",
        queries(int(args.paced_seconds * args.rate), args.results, rng),
        args.rate,
    )
    servers["floor"].resume()
    print(
        f"paced {args.rate:g} searches/s: p50 {statistics.median(steady) * 1000:.1f} ms, "
        f"p99 {p99(steady) * 1000:.1f} ms",
        flush=True,
    )
    return {
        "paced_rate": args.rate,
        "paced_p99_ms": round(p99(steady) * 1000, 2),
        "paced_p50_ms": round(statistics.median(steady) * 1000, 2),
        "search_rps": round(statistics.median(rps["full"])),
        "floor_rps": round(statistics.median(rps["floor"])),
        "search_ratio": round(
            statistics.median(
                full / floor for full, floor in zip(rps["full"], rps["floor"], strict=True)
            ),
            3,
        ),
        "search_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "search_p99_ms": round(p99(latencies) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=RESULTS)
    parser.add_argument("--requests", type=int, default=400, help="per server and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rate", type=float, default=20.0, help="paced searches per second")
    parser.add_argument("--paced-seconds", type=float, default=15.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'pages.sqlite3'}"
        start = time.perf_counter()
        asyncio.run(build_database(url, args.results))
        print(f"{args.results} published results written in {time.perf_counter() - start:.1f} s")
        servers = {"floor": Server("floor", serve_floor), "full": Server("full", serve_full, url)}
        try:
            results = asyncio.run(measure(servers, args))
        finally:
            for server in servers.values():
                server.stop()
    print(
        f"search: {results['search_rps']} req/s (floor {results['floor_rps']}), "
        f"p50 {results['search_p50_ms']} ms, p99 {results['search_p99_ms']} ms"
    )
    print(
        json.dumps(
            {
                **results,
                "results": args.results,
                "requests": args.requests,
                "rounds": args.rounds,
                "concurrency": args.concurrency,
            }
        )
    )


if __name__ == "__main__":
    main()

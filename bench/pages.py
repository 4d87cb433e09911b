"""Web page benchmark: each scenario's requests against the full server and a bare handler.

    python bench/pages.py [--requests 300] [--rounds 3] [--concurrency 4] [--only NAME …]

Full: the app the server runs (bot.app.create_app over bot.server.build_services, pages only,
no background workers, the startup objects frozen out of the garbage collector's sight as
`lianjian serve` does) on an SQLite file prepared here, in a child process. Floor: a bare
aiohttp handler in another child process doing the least a signed form page must: read the
request, verify the link's HMAC and expiry, for a POST check the CSRF token and store the
posted form as one committed row on the same SQLite file, answer a small page. The client runs
in this process with every request (signed links, bodies) built before
the clock starts. Rounds alternate floor and full bursts (only the server under test runs; the
other is paused); per scenario: requests/s, p50/p99 latency, and the median of the per-round
full/floor ratios. On Linux also each server's own CPU time per request (from /proc) and their
ratio, which a machine shared with other work blurs far less than requests/s.

Scenarios are registered in SCENARIOS: a name, what to prepare in the database and a function
building the requests of one burst. Targets: result-form POST ≥ 30 % of the floor.
Loopback only. The last line printed is one JSON object.
LIANJIAN_BENCH_PROFILE / LIANJIAN_BENCH_STATEMENTS (bench/profiling.py): the full server's cProfile
or statement counts, written to <path>.pages.<port>.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from profiling import run_profiled

SECRET = "p" * 40
TARGETS = {"result_form_post": 0.30}


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    """What the prepared database holds, for building requests."""

    officer_id: int
    case_ids: list[int]
    item_id: int
    today: dt.date
    used: int = 0  # cases already taken by a burst (a result is entered once per case)

    def take(self, n: int) -> list[int]:
        if self.used + n > len(self.case_ids):
            raise SystemExit("not enough prepared cases: raise --requests × --rounds budget")
        ids = self.case_ids[self.used : self.used + n]
        self.used += n
        return ids


@dataclass(frozen=True)
class Scenario:
    name: str
    requests: Callable[[World, int], list[Request]]  # (world, how many) -> one burst
    cases_per_request: int = 0  # fresh cases each request consumes


def _token(world: World, case_id: int) -> str:
    from core.links import sign_link

    expires = int(time.time()) + 3600
    return sign_link(SECRET.encode(), world.officer_id, f"case:{case_id}", "result", expires)


def form_get(world: World, n: int) -> list[Request]:
    ids = world.case_ids
    return [
        Request("GET", "/h5/result?" + urlencode({"t": _token(world, ids[i % len(ids)])}))
        for i in range(n)
    ]


def form_post(world: World, n: int) -> list[Request]:
    from bot.pages.base import csrf_token

    found = []
    for case_id in world.take(n):
        token = _token(world, case_id)
        body = urlencode(
            [
                ("t", token),
                ("csrf", csrf_token(SECRET.encode(), token)),
                ("inspected_on", world.today.isoformat()),
                ("methods", "实地检查"),
                ("followups", "无需后续处置"),
                (f"item.{world.item_id}.codes", "1"),
                (f"item.{world.item_id}.problems", ""),
                (f"item.{world.item_id}.handling", ""),
                ("remarks", "现场检查未发现问题，经营者配合检查。"),
            ]
        ).encode()
        found.append(
            Request(
                "POST", "/h5/result", body, {"Content-Type": "application/x-www-form-urlencoded"}
            )
        )
    return found


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("result_form_get", form_get),
        Scenario("result_form_post", form_post, cases_per_request=1),
    )
}


# ---------------------------------------------------------------- the database


async def prepare(db: str, n_cases: int) -> World:
    from core.clock import china_noon
    from core.db import make_engine, make_sessionmaker
    from core.models import (
        Case,
        Department,
        Invitation,
        Item,
        JointTask,
        Officer,
        Target,
        TaskItem,
    )
    from core.schema import upgrade
    from tests.factories import group_members, valid_uscc

    today = dt.date.today()
    engine = make_engine(db)
    await upgrade(engine)
    async with make_sessionmaker(engine)() as s:
        lead = Department(code="SJ", name="县市场监督管理局", is_market_regulator=True)
        other = Department(code="WJ", name="县卫生健康委员会")
        s.add_all([lead, other])
        await s.flush()
        a1 = Officer(code="A1", name="张检查", department_id=lead.id, roles=["inspector"])
        a2 = Officer(code="A2", name="李检查", department_id=lead.id, roles=["inspector"])
        item = Item(department_id=lead.id, code="SJ-01", name="企业公示信息检查", category="key")
        s.add_all([a1, a2, item])
        await s.flush()
        task = JointTask(
            code="LJ-BENCH-001",
            year=today.year,
            title="基准测试联合抽查",
            lead_department_id=lead.id,
            window_start=today - dt.timedelta(days=30),
            window_end=today + dt.timedelta(days=30),
            state="inspecting",
            created_at=china_noon(today - dt.timedelta(days=40)),
        )
        s.add(task)
        await s.flush()
        s.add_all(
            [
                TaskItem(task_id=task.id, item_id=item.id, department_id=lead.id),
                Invitation(
                    task_id=task.id, department_id=other.id, state="declined", reason="基准测试"
                ),
            ]
        )
        targets = [
            Target(uscc=valid_uscc(i), name=f"基准测试企业{i:05d}", address="某某路")
            for i in range(n_cases)
        ]
        s.add_all(targets)
        await s.flush()
        cases = [
            Case(code=f"LJ-BENCH-001-{i:05d}", task_id=task.id, target_id=t.id)
            for i, t in enumerate(targets)
        ]
        s.add_all(cases)
        await s.flush()
        s.add_all(m for c in cases for m in group_members(c.id, (a1, a2)))
        await s.commit()
        world = World(a1.id, [c.id for c in cases], item.id, today)
    await engine.dispose()
    return world


# ---------------------------------------------------------------- the two servers


def serve_full(port: int, db: str, files: str) -> None:
    from bot.app import create_app
    from bot.config import load_settings
    from bot.server import build_services, freeze_startup_objects

    settings = load_settings(
        database_url=db,
        host="127.0.0.1",
        port=port,
        link_secret=SECRET,
        public_base_url=f"http://127.0.0.1:{port}",
        attachments={"dir": files},
    )

    async def app() -> web.Application:
        built = create_app(await build_services(settings), workers=())
        built.on_startup.append(freeze_startup_objects)
        return built

    run_profiled(
        lambda: web.run_app(app(), host="127.0.0.1", port=port, access_log=None, print=None),
        f"pages.{port}",
    )


def serve_floor(port: int, db: str, files: str) -> None:
    """The least any signed form page must do: read the request, verify the link (HMAC,
    expiry) and, for a POST, the CSRF token, and a POST stores what was posted durably (one
    row, committed, on the same SQLite file); then answer a small page."""
    import sqlite3

    from bot.pages.base import csrf_ok
    from core.links import verify_link

    page = "<!doctype html><html lang='zh-CN'><body>已提交</body></html>"
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id INTEGER PRIMARY KEY, body TEXT)")

    async def handler(request: web.Request) -> web.Response:
        form = await request.post() if request.method == "POST" else request.query
        token = str(form.get("t", ""))
        verify_link(SECRET.encode(), token, time.time(), action="result")
        if request.method == "POST":
            if not csrf_ok(SECRET.encode(), token, str(form.get("csrf", ""))):
                raise web.HTTPForbidden()
            conn.execute(
                "INSERT INTO bench_floor (body) VALUES (?)",
                (json.dumps(dict(form), ensure_ascii=False),),
            )
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/healthz", lambda request: web.Response(text="ok"))
    app.router.add_route("*", "/h5/result", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, target: Any, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = mp.get_context("spawn").Process(
            target=target, args=(self.port, *args), daemon=True
        )
        self.proc.start()

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used (user + system; Linux /proc), or None."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc.pid is not None
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        self.signal(signal.SIGCONT)
        self.proc.terminate()
        self.proc.join(10)


async def wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(base + "/healthz") as resp:
                    await resp.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise SystemExit(f"server at {base} did not start")


# ---------------------------------------------------------------- measuring


async def burst(base: str, requests: list[Request], concurrency: int) -> tuple[float, list[float]]:
    """Requests/s at fixed concurrency and every latency; any non-2xx answer is an error."""
    queue = iter(requests)
    latencies: list[float] = []

    async def worker(http: aiohttp.ClientSession) -> None:
        for r in queue:
            start = time.perf_counter()
            async with http.request(
                r.method, base + r.path, data=r.body or None, headers=r.headers
            ) as resp:
                await resp.read()
                if resp.status >= 300:
                    raise SystemExit(f"{r.method} {r.path[:40]} answered {resp.status}")
            latencies.append(time.perf_counter() - start)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        return len(latencies) / (time.perf_counter() - start), latencies


def p(latencies: list[float], q: int) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[q - 1] * 1000


async def run_scenario(
    s: Scenario, world: World, full: Server, floor: Server, args: argparse.Namespace
) -> dict[str, Any]:
    rps: dict[str, list[float]] = {"full": [], "floor": []}
    lat: dict[str, list[float]] = {"full": [], "floor": []}
    cpu: dict[str, list[float]] = {"full": [], "floor": []}  # server CPU ms per request
    ratios = []
    for _ in range(args.rounds):
        for name, server, other in (("floor", floor, full), ("full", full, floor)):
            requests = s.requests(world, args.requests)  # built before the clock starts
            other.signal(signal.SIGSTOP)
            before = server.cpu_seconds()
            try:
                r, latencies = await burst(server.base, requests, args.concurrency)
            finally:
                other.signal(signal.SIGCONT)
            after = server.cpu_seconds()
            if before is not None and after is not None:
                cpu[name].append((after - before) * 1000 / len(requests))
            rps[name].append(r)
            lat[name] += latencies
        ratios.append(rps["full"][-1] / rps["floor"][-1])
    figures = {
        name: {
            "rps": statistics.median(rps[name]),
            "p50_ms": p(lat[name], 50),
            "p99_ms": p(lat[name], 99),
        }
        for name in rps
    }
    ratio = statistics.median(ratios)
    print(
        f"{s.name}: full {figures['full']['rps']:.0f} req/s (p50 {figures['full']['p50_ms']:.1f}"
        f" ms, p99 {figures['full']['p99_ms']:.1f} ms); bare {figures['floor']['rps']:.0f}"
        f" req/s (p99 {figures['floor']['p99_ms']:.1f} ms); ratio {ratio:.2f}"
        f" (rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
    )
    extra: dict[str, Any] = {}
    if cpu["full"] and cpu["floor"]:
        # what a loaded machine blurs least: the server's own CPU per request
        full_cpu, floor_cpu = statistics.median(cpu["full"]), statistics.median(cpu["floor"])
        extra = {"cpu_ms": full_cpu, "floor_cpu_ms": floor_cpu, "cpu_ratio": floor_cpu / full_cpu}
        print(
            f"{s.name}: server CPU per request full {full_cpu:.2f} ms, bare {floor_cpu:.2f} ms;"
            f" CPU ratio {floor_cpu / full_cpu:.2f}"
        )
    return {**figures, "ratio": ratio, "target_ratio": TARGETS.get(s.name), **extra}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    chosen = [SCENARIOS[n] for n in (args.only or SCENARIOS)]
    fresh = sum(s.cases_per_request for s in chosen) * args.requests * args.rounds * 2
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.sqlite3")
        world = await prepare(db, max(fresh, 100))
        full = Server(serve_full, db, str(Path(tmp) / "files"))
        floor = Server(serve_floor, db, "")
        try:
            await wait_ready(full.base)
            await wait_ready(floor.base)
            return {s.name: await run_scenario(s, world, full, floor, args) for s in chosen}
        finally:
            full.stop()
            floor.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS))
    results = asyncio.run(main_async(parser.parse_args()))
    print(
        json.dumps(
            {
                "bench": "pages",
                **{
                    k: {
                        m: round(v, 3) if isinstance(v, float) else v
                        for m, v in r.items()
                        if m != "full" and m != "floor"
                    }
                    | {
                        "full_rps": round(r["full"]["rps"], 1),
                        "full_p99_ms": round(r["full"]["p99_ms"], 1),
                        "floor_rps": round(r["floor"]["rps"], 1),
                    }
                    for k, r in results.items()
                },
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()

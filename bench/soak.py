"""Soak benchmark: steady signed WeCom traffic against `serve`, measuring acks AND handling.

    python bench/soak.py [--rate 50] [--seconds 180] [--pg URL] [--pg-events 1500]

Run on demand (minutes long), never in CI. Phase 1: one `serve` (bot.server.make_app: the
real dispatcher, sender, scheduler) on an SQLite file holding the demo county after one whole
joint task (`lianjian demo`), every officer bound to a WeCom account. An open-loop client posts
encrypted, signed text callbacks at `--rate` per second for `--seconds`, round robin over the
officers, with a mix of commands (帮助, 任务, 我的检查, 进度, 汇总, 任务 编号). A fake WeCom send
API in its own process stamps each reply's arrival; each command gets exactly one reply to its
sender and replies to one user keep their order, so the k-th reply to an officer answers their
k-th command: that is the callback → reply latency. Printed: ack p50/p99, reply p50/p99,
handled/s, inbox backlog when the load stops and 5 s later, RSS of the server after a warm-up
and at the end.

Phase 2 (when --pg or LIANJIAN_TEST_DATABASE_URL names a PostgreSQL server): handling capacity
of one and of two `serve` processes on one fresh PostgreSQL database: each process first handles
an untimed warm-up of the same traffic, the others paused (its start-up costs are not
capacity), then
`--pg-events` callbacks
are posted as fast as they are acked (spread over the processes), and handled/s is events over
the time until the inbox is empty (then, untimed, the run's replies are sent; the next run
starts after a VACUUM ANALYZE, as pgbench's runs do). Same traffic mix, same database size for
both; one and two processes alternate `--pg-rounds` times and the ratio is of the medians
(the median of each pair's ratio is printed too). `--inbox-batch` sets the PostgreSQL
processes' inbox claim size.
Before the rounds, two bare CPU-bound interpreter loops against one (`machine_2proc`): what this
machine's two cores give two processes at best, before PostgreSQL and the client take their
share.

Targets on the shared 2-core machine: at 50 req/s for 3 minutes on SQLite reply p99 < 2 s,
backlog 0 within 5 s of the end, RSS growth < 10 %; two PostgreSQL processes ≥ 1.6× one.
The last line printed is one JSON object. LIANJIAN_BENCH_PROFILE=/tmp/prof writes a cProfile
of each server to /tmp/prof.soak.<port>.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import signal
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from callbacks import AGENT, CORP, TOKEN, bench_wecom, free_port, wait_ready
from profiling import run_profiled

from tests.fakes.wecom import WeComCallbackClient, text_xml
from tests.server_helpers import random_aes_key

WARMUP_S = 15.0  # RSS "start" is taken after this much load: first-use caches are not growth
SETTLE_S = 5.0  # the backlog target: empty this long after the load stops
TASK = "LJ-2026-001"  # the demo's joint task


def commands(officer: str) -> list[str]:
    """The mix one officer cycles through; each answers with exactly one direct reply."""
    return ["任务", "帮助", "我的检查", f"进度 {TASK}", "汇总", f"任务 {TASK}"]


# ---------------------------------------------------------------- child processes


def serve_recording_api(port: int) -> None:
    """WeCom's token and send API on loopback: accepts everything, remembers when each
    reply to which user arrived (GET /records)."""
    records: list[tuple[float, str]] = []

    async def gettoken(request: web.Request) -> web.Response:
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": "t" * 64, "expires_in": 7200}
        )

    async def send(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("msgtype") != "image":  # 汇总's chart follows its text: one reply per command
            records.append((time.time(), str(body.get("touser", ""))))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": uuid.uuid4().hex})

    async def upload(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "type": "image", "media_id": uuid.uuid4().hex}
        )

    async def dump(request: web.Request) -> web.Response:
        return web.json_response(records)

    app = web.Application()
    app.router.add_get("/cgi-bin/gettoken", gettoken)
    app.router.add_post("/cgi-bin/message/send", send)
    app.router.add_post("/cgi-bin/media/upload", upload)
    app.router.add_get("/records", dump)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve(port: int, aes: str, db: str, api_port: int, inbox_batch: int = 0) -> None:
    from bot.config import load_settings
    from bot.server import serve as serve_app

    api = f"http://127.0.0.1:{api_port}"
    settings = load_settings(
        database_url=db,
        host="127.0.0.1",
        port=port,
        link_secret="b" * 40,
        log_level="warning",
        wecom=bench_wecom(aes, api),
        **({"inbox": {"batch_size": inbox_batch}} if inbox_batch else {}),
    )
    run_profiled(lambda: asyncio.run(serve_app(settings)), f"soak.{port}")


def spawn(target: Any, *args: Any) -> mp.Process:
    proc = mp.get_context("spawn").Process(target=target, args=args, daemon=True)
    proc.start()
    return proc


def stop(proc: mp.Process) -> None:
    proc.terminate()
    proc.join(20)


def rss_kb(pid: int | None) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds the process has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the database


async def prepare(db: str) -> list[str]:
    """The demo county after one whole task, every officer bound to WeCom as their code in
    lower case; returns the officers' WeCom ids."""
    from sqlalchemy import select

    from core.db import make_engine, make_sessionmaker
    from core.demo import run_demo
    from core.models import ChatPlatform, Officer
    from core.officers import set_account

    if await run_demo(db=db, seed=2026, targets=2000, out=lambda _line: None) != 0:
        raise RuntimeError("the demo failed")
    engine = make_engine(db)
    try:
        async with make_sessionmaker(engine)() as session:
            officers = list(await session.scalars(select(Officer).order_by(Officer.id)))
            for officer in officers:
                set_account(officer, ChatPlatform.WECOM, officer.code.lower())
            await session.commit()
            return [officer.code.lower() for officer in officers]
    finally:
        await engine.dispose()


async def create_pg_database(url: str) -> str:
    """A fresh database on the server of `url`; returns its URL."""
    from sqlalchemy import text

    from core.db import make_engine

    name = f"soak_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url.rsplit("/", 1)[0] + "/postgres")
    async with admin.connect() as conn:
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
            text(f'CREATE DATABASE "{name}"')
        )
    await admin.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


async def drop_pg_database(url: str) -> None:
    from sqlalchemy import text

    from core.db import make_engine

    base, name = url.rsplit("/", 1)
    admin = make_engine(base + "/postgres")
    async with admin.connect() as conn:
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
            text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )
    await admin.dispose()


async def vacuum(url: str) -> None:
    """VACUUM ANALYZE, as pgbench does before each run: every run starts from the same tables,
    not with the dead rows of the run before it for autovacuum to take on in the middle of
    this one (the PostgreSQL CPU per callback then went 1.0 → 2.2 → 5.0 ms over three rounds
    of 3,000 callbacks, and its rounds' ratios with it)."""
    from sqlalchemy import text

    from core.db import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                text("VACUUM ANALYZE")
            )
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- the client


class Traffic:
    """Signed callbacks round robin over the officers; remembers when each user sent what."""

    def __init__(self, aes: str, users: list[str], prefix: str) -> None:
        self.maker = WeComCallbackClient(TOKEN, aes, CORP, "")
        self.users, self.prefix, self.n = users, prefix, 0
        self.sent: dict[str, list[float]] = defaultdict(list)  # user -> send times, in order
        self.acks: list[float] = []

    def next_request(self) -> tuple[str, dict[str, str], bytes]:
        i, self.n = self.n, self.n + 1
        user = self.users[i % len(self.users)]
        mix = commands(user)
        command = mix[(i // len(self.users)) % len(mix)]
        now = int(time.time())
        encrypted = self.maker.encrypt(
            text_xml(user, command, f"{self.prefix}{i}", corp_id=CORP, created=now)
        )
        ts, nonce = str(now), str(100000 + i)
        query = {
            "msg_signature": self.maker.sign(ts, nonce, encrypted),
            "timestamp": ts,
            "nonce": nonce,
        }
        body = (
            f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA["
            f"{encrypted}]]></Encrypt><AgentID><![CDATA[{AGENT}]]></AgentID></xml>"
        ).encode()
        return user, query, body

    async def post(
        self,
        http: aiohttp.ClientSession,
        url: str,
        built: tuple[str, dict[str, str], bytes] | None = None,
    ) -> None:
        """Send `built` (from next_request), or the next request built now."""
        user, query, body = built or self.next_request()
        started = time.time()
        self.sent[user].append(started)
        async with http.post(url, params=query, data=body) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"callback answered {resp.status}")
        self.acks.append(time.time() - started)


async def paced(
    traffic: Traffic, urls: list[str], rate: float, seconds: float, at_warmup: Any
) -> None:
    """Open loop: request i starts at i / rate whatever the earlier ones are doing."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        start, tasks, warm = time.perf_counter(), [], False
        for i in range(int(rate * seconds)):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if not warm and time.perf_counter() - start >= WARMUP_S:
                warm = True
                at_warmup()
            tasks.append(asyncio.create_task(traffic.post(http, urls[i % len(urls)])))
        await asyncio.gather(*tasks)


async def flood(
    traffic: Traffic,
    urls: list[str],
    requests: list[tuple[str, dict[str, str], bytes]],
    concurrency: int = 16,
) -> None:
    """Send `requests`, `concurrency` at a time. The caller encrypts and signs them before its
    clock starts, as pages.py builds its requests: WeCom's servers do that work, not the
    machine that runs `serve`, and on 2 cores the client's AES would take CPU from the
    processes measured."""
    built = iter(requests)
    async with aiohttp.ClientSession() as http:

        async def worker(k: int) -> None:
            for request in built:
                await traffic.post(http, urls[k % len(urls)], request)

        await asyncio.gather(*(worker(k) for k in range(concurrency)))


async def backlog(base: str, queue: str = "inbox") -> int:
    async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as resp:
        return int((await resp.json())[f"pending_{queue}"])


async def drained_at(base: str, deadline_s: float) -> float | None:
    """time.time() when the inbox was first seen empty, None if not within the deadline."""
    end = time.time() + deadline_s
    while time.time() < end:
        if await backlog(base) == 0:
            return time.time()
        await asyncio.sleep(0.1)
    return None


async def replies_sent(base: str, deadline_s: float) -> None:
    """Wait until the outbox is empty too: every reply reached the fake API."""
    end = time.time() + deadline_s
    while time.time() < end:
        if await backlog(base, "outbox") == 0:
            return
        await asyncio.sleep(0.1)
    return None


async def replies(api: str) -> dict[str, list[float]]:
    async with aiohttp.ClientSession() as http, http.get(api + "/records") as resp:
        records = await resp.json()
    by_user: dict[str, list[float]] = defaultdict(list)
    for at, user in records:
        by_user[user].append(at)
    return by_user


def reply_latencies(
    traffic: Traffic, got: dict[str, list[float]]
) -> tuple[list[tuple[float, float]], int]:
    """(sent at, latency) of each command: the k-th reply to a user answers their k-th
    command; also how many commands had none."""
    latencies, missing = [], 0
    for user, sent in traffic.sent.items():
        arrived = sorted(got.get(user, []))
        latencies += [(s, a - s) for s, a in zip(sent, arrived, strict=False)]
        missing += max(0, len(sent) - len(arrived))
    return sorted(latencies), missing


def by_window(latencies: list[tuple[float, float]], started: float, width_s: float = 30.0) -> str:
    """Reply p99 per window of the run: a warm-up or a stall shows where it happened."""
    windows: dict[int, list[float]] = defaultdict(list)
    for at, latency in latencies:
        windows[int((at - started) // width_s)].append(latency)
    return "  ".join(
        f"{k * width_s:g}s:{pct(v, 99):.2f}" for k, v in sorted(windows.items()) if len(v) > 1
    )


def pct(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] if values else float("nan")
    )


# ---------------------------------------------------------------- phases


async def sqlite_phase(args: argparse.Namespace, aes: str, tmp: str) -> dict[str, Any]:
    db = str(Path(tmp) / "soak.sqlite3")
    users = await prepare(db)
    api_port, port = free_port(), free_port()
    api = spawn(serve_recording_api, api_port)
    server = spawn(serve, port, aes, db, api_port)
    base = f"http://127.0.0.1:{port}"
    rss: dict[str, int] = {}
    try:
        await wait_ready(base + "/healthz")
        await wait_ready(f"http://127.0.0.1:{api_port}/records")
        traffic = Traffic(aes, users, "s")
        started, cpu_start = time.time(), cpu_s(server.pid)
        await paced(
            traffic,
            [base + "/wecom/callback"],
            args.rate,
            args.seconds,
            lambda: rss.setdefault("start", rss_kb(server.pid)),
        )
        ended = time.time()
        backlog_at_end = await backlog(base)
        await asyncio.sleep(max(0.0, ended + SETTLE_S - time.time()))
        backlog_end = await backlog(base)
        drained = await drained_at(base, 120.0)
        await replies_sent(base, 60.0)
        rss["end"] = rss_kb(server.pid)
        cpu = cpu_s(server.pid) - cpu_start
        busy = cpu / (time.time() - started)
        timed, missing = reply_latencies(traffic, await replies(f"http://127.0.0.1:{api_port}"))
    finally:
        stop(server)
        stop(api)
    handled_until = (drained or time.time()) - started
    latencies = [latency for _, latency in timed]
    result = {
        "requests": traffic.n,
        "ack_p50_ms": pct(traffic.acks, 50) * 1000,
        "ack_p99_ms": pct(traffic.acks, 99) * 1000,
        "reply_p50_s": pct(latencies, 50),
        "reply_p99_s": pct(latencies, 99),
        "replies_missing": missing,
        "handled_per_s": traffic.n / handled_until,
        "cpu_ms_per_callback": cpu / traffic.n * 1000,
        "server_cpu_share": busy,
        "backlog_at_stop": backlog_at_end,
        "backlog_end": backlog_end,
        "drain_s": None if drained is None else drained - ended,
        "rss_start_mb": rss.get("start", 0) / 1024,
        "rss_end_mb": rss["end"] / 1024,
        "rss_growth": rss["end"] / rss["start"] - 1 if rss.get("start") else float("nan"),
    }
    print(
        f"SQLite, one serve, {args.rate:g} req/s for {args.seconds:g} s ({traffic.n} "
        f"callbacks): ack p50 {result['ack_p50_ms']:.1f} ms p99 {result['ack_p99_ms']:.1f} ms"
        f" | callback→reply p50 {result['reply_p50_s']:.2f} s p99 {result['reply_p99_s']:.2f}"
        f" s ({missing} without reply) | handled {result['handled_per_s']:.1f}/s | backlog "
        f"{backlog_at_end} at the stop, {backlog_end} {SETTLE_S:g} s later | RSS "
        f"{result['rss_start_mb']:.1f} → {result['rss_end_mb']:.1f} MB "
        f"({result['rss_growth']:+.1%}) | server CPU {result['cpu_ms_per_callback']:.1f} ms "
        f"per callback, busy {busy:.0%} of one core\nreply p99 per "
        f"{args.window:g} s window: {by_window(timed, started, args.window)}",
        flush=True,
    )
    return result


async def pg_backends_cpu(db: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend connected to `db` (the server runs on
    this machine), this look-up's own excepted."""
    from sqlalchemy import text

    from core.db import make_engine

    engine = make_engine(db)
    try:
        async with engine.connect() as conn:
            pids = await conn.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            )
            found = list(pids)
    finally:
        await engine.dispose()
    cpu = {}
    for pid in found:
        with contextlib.suppress(OSError):  # gone, or the server is not on this machine
            cpu[pid] = cpu_s(pid)
    return cpu


async def pg_capacity(
    db: str, aes: str, users: list[str], procs: int, n: int, prefix: str, inbox_batch: int = 0
) -> float:
    api_port = free_port()
    api = spawn(serve_recording_api, api_port)
    ports = [free_port() for _ in range(procs)]
    servers = [spawn(serve, port, aes, db, api_port, inbox_batch) for port in ports]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            await wait_ready(base + "/healthz")
        await wait_ready(f"http://127.0.0.1:{api_port}/records")
        await warm_up(aes, users, prefix, bases, servers)
        await vacuum(db)
        traffic = Traffic(aes, users, prefix)
        requests = [traffic.next_request() for _ in range(n)]
        pg_start = await pg_backends_cpu(db)
        started, cpu_start = time.time(), sum(cpu_s(s.pid) for s in servers)
        client_start = time.process_time() + cpu_s(api.pid)
        await flood(traffic, [b + "/wecom/callback" for b in bases], requests)
        acked = time.time()
        drained = await drained_at(bases[0], 600.0)
        cpu = sum(cpu_s(s.pid) for s in servers) - cpu_start
        client = time.process_time() + cpu_s(api.pid) - client_start
        pg_end = await pg_backends_cpu(db)
        idle = os.getloadavg()[0]
        # not timed: the replies still queued are this run's work, not the next run's
        await replies_sent(bases[0], 120.0)
    finally:
        for server in servers:
            stop(server)
        stop(api)
    if drained is None:
        raise RuntimeError("the PostgreSQL inbox did not drain within 10 minutes")
    rate = n / (drained - started)
    pg = sum(used - pg_start.get(pid, 0.0) for pid, used in pg_end.items())
    server_ms, pg_ms, client_ms = (x / n * 1000 for x in (cpu, pg, client))
    print(
        f"PostgreSQL, {procs} serve process(es): {n} callbacks acked in {acked - started:.1f}"
        f" s, handled in {drained - started:.1f} s = {rate:.1f}/s; CPU per callback: server "
        f"{server_ms:.1f} ms, PostgreSQL {pg_ms:.1f} ms, client and fake API {client_ms:.1f}"
        f" ms (two processes on 2 cores can reach at most 2 × server / all = "
        f"{2 * server_ms / (server_ms + pg_ms + client_ms):.2f}× one CPU-bound process); "
        f"machine load average {idle:.1f}",
        flush=True,
    )
    return rate


WARM_EVENTS = 240  # per process: every command of the mix, from many officers, several times


async def warm_up(
    aes: str, users: list[str], prefix: str, bases: list[str], servers: list[mp.Process]
) -> None:
    """Untimed: each process handles some of the same traffic first, so the measured run sees
    processes in their steady state. A process's first commands pay once for what it then
    keeps (compiled SQL, prepared statements on its connections, templates); two fresh
    processes would pay it twice within the same number of measured callbacks, which
    counted against two processes what is a start-up cost. The inbox is shared, so each
    process is warmed while the others are paused (SIGSTOP, idle at that moment): it acks,
    handles and answers its warm-up itself."""
    traffic = Traffic(aes, users, f"w{prefix}")
    for base, server in zip(bases, servers, strict=True):
        with paused([s for s in servers if s is not server]):
            requests = [traffic.next_request() for _ in range(WARM_EVENTS)]
            await flood(traffic, [base + "/wecom/callback"], requests)
            if await drained_at(base, 120.0) is None:
                raise RuntimeError("the warm-up did not drain within 2 minutes")
            await replies_sent(base, 120.0)


@contextlib.contextmanager
def paused(procs: list[mp.Process]) -> Iterator[None]:
    """The started processes stopped (SIGSTOP) for the block and continued after it, however
    it ends. Their pids are checked first: os.kill(0, …) would stop this bench's own process
    group."""
    pids = [p.pid for p in procs if p.pid is not None]
    assert len(pids) == len(procs), "a process not started cannot be paused"
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


async def pg_phase(url: str, args: argparse.Namespace, aes: str) -> float:
    """One and two processes in turn, `--pg-rounds` times: the machine's other load drifts
    over minutes, so the ratio is of the medians of runs taken side by side."""
    db = await create_pg_database(url)
    try:
        users = await prepare(db)
        # warm PostgreSQL's caches first, so neither measured run pays for them
        await pg_capacity(db, aes, users, 1, min(200, args.pg_events), "pw")
        ones, twos = [], []
        for r in range(args.pg_rounds):
            for procs, runs in ((1, ones), (2, twos)):
                runs.append(
                    await pg_capacity(
                        db, aes, users, procs, args.pg_events, f"p{procs}r{r}_", args.inbox_batch
                    )
                )
        one, two = statistics.median(ones), statistics.median(twos)
        # each two-process run against the one-process run just before it: the machine's
        # other load drifts over minutes, less so within one pair
        pairs = statistics.median(b / a for a, b in zip(ones, twos, strict=True))
        print(
            f"PostgreSQL handled/s, median of {args.pg_rounds}: one process {one:.1f}, two "
            f"{two:.1f} (runs: {', '.join(f'{x:.1f}' for x in ones)} | "
            f"{', '.join(f'{x:.1f}' for x in twos)}); median of the pairs' ratios "
            f"{pairs:.2f}",
            flush=True,
        )
        return two / one
    finally:
        await drop_pg_database(db)


def _interpreter_work(n: int) -> float:
    """Wall seconds of a fixed CPU-bound pure-Python loop (dicts, strings, arithmetic: what a
    handler's own code does), measured in the process that runs it."""
    started = time.perf_counter()
    seen: dict[str, int] = {}
    for i in range(n):
        key = f"k{i % 997}"
        seen[key] = seen.get(key, 0) + i * 31 % 7
    return time.perf_counter() - started


def machine_scaling(rounds: int = 3, n: int = 3_000_000) -> float:
    """What two CPU-bound processes do here against one, on nothing but the interpreter: the
    ceiling two `serve` processes share with PostgreSQL and the client. Cores a host shares
    with other guests (or hyperthreads) give less than 2×. Median of `rounds` pairs."""
    ctx = mp.get_context("spawn")
    ratios = []
    with ctx.Pool(2) as pool:
        pool.map(_interpreter_work, [n // 10] * 2)  # both workers started and warm
        for _ in range(rounds):
            one = pool.apply(_interpreter_work, (n,))
            two = max(pool.map(_interpreter_work, [n, n], chunksize=1))
            ratios.append(2 * one / two)
    return statistics.median(ratios)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    aes = random_aes_key()
    with tempfile.TemporaryDirectory() as tmp:
        result = await sqlite_phase(args, aes, tmp) if args.seconds > 0 else {}
    pg = args.pg or os.environ.get("LIANJIAN_TEST_DATABASE_URL")
    scale = machine = None
    if pg and args.pg_events > 0:
        machine = machine_scaling()
        print(f"this machine: two CPU-bound Python processes do {machine:.2f}× one", flush=True)
        scale = await pg_phase(pg, args, aes)
        print(
            f"two PostgreSQL processes handle {scale:.2f}× what one handles "
            f"(two bare interpreter loops: {machine:.2f}×, measured before the rounds)",
            flush=True,
        )
    return {**result, "pg_scale_2proc": scale, "machine_2proc": machine}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="callbacks per second")
    parser.add_argument("--seconds", type=float, default=180.0, help="SQLite load; 0 skips it")
    parser.add_argument(
        "--pg",
        default="",
        help="PostgreSQL server URL (default: "
        "LIANJIAN_TEST_DATABASE_URL); a fresh database is created and dropped",
    )
    parser.add_argument("--pg-events", type=int, default=1500, help="0 skips PostgreSQL")
    parser.add_argument(
        "--pg-rounds", type=int, default=3, help="one and two processes, this many times each"
    )
    parser.add_argument("--window", type=float, default=30.0, help="reply p99 per window")
    parser.add_argument(
        "--inbox-batch", type=int, default=0, help="[inbox] batch_size of the PostgreSQL serves"
    )
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    keys = (
        "reply_p99_s",
        "handled_per_s",
        "backlog_end",
        "rss_growth",
        "pg_scale_2proc",
        "machine_2proc",
        "reply_p50_s",
        "ack_p50_ms",
        "cpu_ms_per_callback",
        "ack_p99_ms",
        "replies_missing",
        "drain_s",
        "requests",
    )
    print(
        json.dumps(
            {
                k: round(v, 3) if isinstance(v, float) else v
                for k in keys
                if (v := result.get(k)) is not None or k == "pg_scale_2proc"
            }
        )
    )


if __name__ == "__main__":
    main()

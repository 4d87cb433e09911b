"""Callback benchmark: encrypted WeCom text callbacks over loopback, full server vs floor.

    python bench/callbacks.py [--requests 2000] [--rounds 3] [--concurrency 32] [--paced-seconds 5]

Full: the `serve` app (bot.server.make_app: migrations, WeCom adapter, durable inbox on an
SQLite file, inbox worker with the real dispatcher, sender, scheduler) in a child process.
Floor: a bare aiohttp handler in another child process that only verifies the signature and
decrypts the same payloads (the adapter's crypto, nothing stored). The client runs in this
process, with every payload encrypted and signed before the clock starts.
Measured for both, in alternating rounds (only the server under test runs; the other one is
paused): requests/s at fixed concurrency and p50/p99 ack latency; then p99 at a paced 200
requests/s. The throughput ratio is the median of the per-round full/floor ratios.
Target: throughput ≥ 50 % of the floor, p99 < 100 ms at 200 rps.
Loopback only, bounded to well under 60 s. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.wecom import WeComCallbackClient, text_xml
from tests.server_helpers import random_aes_key

CORP, TOKEN, AGENT = "wwbenchcorp", "bench-token", 1000002
PACED_RPS = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_wecom(aes: str, api: str) -> dict[str, Any]:
    """The bench's WeCom app settings: its callbacks signed and encrypted with `aes`, its API
    (and robots') at `api`, a stand-in on loopback."""
    return {
        "corp_id": CORP,
        "agent_id": AGENT,
        "secret": "s",
        "token": TOKEN,
        "encoding_aes_key": aes,
        "api_base": api,
        "webhook_base": api,
    }


def serve_platform_api(port: int) -> None:
    """A stand-in for WeCom's send API on loopback that accepts everything at once, so the
    full server's replies cost what a reachable platform costs (not retries to a closed port)."""

    async def gettoken(request: web.Request) -> web.Response:
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": "t" * 64, "expires_in": 7200}
        )

    async def send(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": "m"})

    app = web.Application()
    app.router.add_get("/cgi-bin/gettoken", gettoken)
    app.router.add_post("/cgi-bin/message/send", send)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_full(port: int, aes: str, db: str, api_port: str) -> None:
    from bot.config import load_settings
    from bot.server import make_app

    api = f"http://127.0.0.1:{api_port}"
    settings = load_settings(
        database_url=db,
        host="127.0.0.1",
        port=port,
        link_secret="b" * 40,
        wecom=bench_wecom(aes, api),
    )
    web.run_app(make_app(settings), host="127.0.0.1", port=port, access_log=None, print=None)


def serve_floor(port: int, aes: str) -> None:
    from bot.platforms.wecom import WeComCrypto, parse_xml

    crypto = WeComCrypto(TOKEN, aes, CORP)

    async def callback(request: web.Request) -> web.Response:
        q = request.query
        encrypted = parse_xml(await request.read()).findtext("Encrypt") or ""
        crypto.check_signature(q["msg_signature"], q["timestamp"], q["nonce"], encrypted)
        parse_xml(crypto.decrypt(encrypted).encode())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/wecom/callback", callback)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def payloads(aes: str, n: int, prefix: str) -> list[tuple[dict[str, str], bytes]]:
    """(query, body) pairs exactly as WeCom would post them, each with its own MsgId."""
    maker = WeComCallbackClient(TOKEN, aes, CORP, "")
    now = int(time.time())
    out = []
    for i in range(n):
        xml = text_xml("bench-user", f"任务 {i}", f"{prefix}{i}", corp_id=CORP, created=now)
        encrypted = maker.encrypt(xml)
        ts, nonce = str(now), str(100000 + i)
        query = {"msg_signature": maker.sign(ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
        body = (
            f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]>"
            f"</Encrypt><AgentID><![CDATA[{AGENT}]]></AgentID></xml>"
        ).encode()
        out.append((query, body))
    return out


async def post(http: aiohttp.ClientSession, url: str, item: tuple[dict[str, str], bytes]) -> float:
    start = time.perf_counter()
    async with http.post(url, params=item[0], data=item[1]) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"callback answered {resp.status}")
    return time.perf_counter() - start


async def wait_ready(url: str, timeout_s: float = 120.0) -> None:
    """Until `url` answers; a start-up (imports, migrations) on a loaded machine takes a while."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"server at {url} did not start")


async def saturate(
    url: str, items: list[tuple[dict[str, str], bytes]], concurrency: int, pooled: list[float]
) -> dict[str, float]:
    """Requests/s of one burst; its latencies are appended to `pooled` too."""
    queue = iter(items)
    latencies: list[float] = []

    async def worker(http: aiohttp.ClientSession) -> None:
        for item in queue:
            latencies.append(await post(http, url, item))

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    pooled += latencies
    return {"rps": len(latencies) / elapsed}


async def paced(url: str, items: list[tuple[dict[str, str], bytes]]) -> dict[str, float]:
    """Open-loop: request i starts at i / 200 s whatever the previous ones are doing."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        start = time.perf_counter()

        async def one(i: int, item: tuple[dict[str, str], bytes]) -> float:
            await asyncio.sleep(max(0.0, start + i / PACED_RPS - time.perf_counter()))
            return await post(http, url, item)

        latencies = await asyncio.gather(*(one(i, it) for i, it in enumerate(items)))
    return percentiles(list(latencies))


def percentiles(latencies: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50_ms": qs[49] * 1000, "p99_ms": qs[98] * 1000}


class Server:
    """One child server; paused (SIGSTOP) while the other one is measured, so its background
    work (the full server's worker draining a burst) neither slows nor flatters the other."""

    def __init__(self, name: str, target: Any, *args: str) -> None:
        self.name, self.port = name, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = mp.get_context("spawn").Process(
            target=target, args=(self.port, *args), daemon=True
        )
        self.proc.start()

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def stop(self) -> None:
        self.resume()  # a stopped process would hold its SIGTERM until the join times out
        self.proc.terminate()
        self.proc.join(10)


async def measure(
    servers: dict[str, Server], aes: str, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Alternate floor and full bursts round by round (the machine's load drifts: adjacent
    bursts see the same weather), then one paced run each. The ratio is the median of the
    per-round ratios."""
    for server in servers.values():
        await wait_ready(server.base + "/")
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    latencies: dict[str, list[float]] = {name: [] for name in servers}

    async def burst(name: str, items: list[tuple[dict[str, str], bytes]]) -> dict[str, float]:
        for other, server in servers.items():
            (server.resume if other == name else server.pause)()
        return await saturate(
            servers[name].base + "/wecom/callback", items, args.concurrency, latencies[name]
        )

    for name in servers:
        await burst(name, payloads(aes, 200, f"{name}w"))
    for r in range(args.rounds):
        for name in servers:
            result = await burst(name, payloads(aes, args.requests, f"{name}{r}l"))
            rounds[name].append(result)
            print(f"round {r + 1} {name:>5}: {result['rps']:8.0f} req/s", flush=True)
    results: dict[str, dict[str, Any]] = {}
    for name, server in servers.items():
        for other in servers.values():
            (other.resume if other is server else other.pause)()
        await asyncio.sleep(1.0)  # let the full server's worker settle before the paced run
        paced_result = await paced(
            server.base + "/wecom/callback",
            payloads(aes, int(args.paced_seconds * PACED_RPS), f"{name}p"),
        )
        result: dict[str, Any] = {
            "rps": statistics.median(x["rps"] for x in rounds[name]),
            **percentiles(latencies[name]),
            "paced_p50_ms": paced_result["p50_ms"],
            "paced_p99_ms": paced_result["p99_ms"],
        }
        print(
            f"{name:>5}: {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
            f"p99 {result['p99_ms']:6.2f} ms  | at {PACED_RPS} req/s: p50 "
            f"{result['paced_p50_ms']:6.2f} ms  p99 {result['paced_p99_ms']:6.2f} ms",
            flush=True,
        )
        results[name] = result
    results["full"]["ratio"] = statistics.median(
        full["rps"] / floor["rps"]
        for floor, full in zip(rounds["floor"], rounds["full"], strict=True)
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per server and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    args = parser.parse_args()
    aes = random_aes_key()
    api_port = free_port()
    api = mp.get_context("spawn").Process(target=serve_platform_api, args=(api_port,), daemon=True)
    api.start()
    with tempfile.TemporaryDirectory() as tmp:
        servers = {
            "floor": Server("floor", serve_floor, aes),
            "full": Server(
                "full", serve_full, aes, str(Path(tmp) / "bench.sqlite3"), str(api_port)
            ),
        }
        try:
            results = asyncio.run(measure(servers, aes, args))
        finally:
            for server in servers.values():
                server.stop()
            api.terminate()
            api.join(5)
    print(
        json.dumps(
            {
                "floor_rps": round(results["floor"]["rps"]),
                "full_rps": round(results["full"]["rps"]),
                "throughput_ratio": round(results["full"]["ratio"], 3),
                "full_p50_ms": round(results["full"]["p50_ms"], 2),
                "full_p99_ms": round(results["full"]["p99_ms"], 2),
                "floor_p99_ms": round(results["floor"]["p99_ms"], 2),
                "p99_ms_at_200rps": round(results["full"]["paced_p99_ms"], 2),
                "requests": args.requests,
                "rounds": args.rounds,
                "concurrency": args.concurrency,
            }
        )
    )


if __name__ == "__main__":
    main()

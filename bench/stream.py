"""Long-connection benchmark: messages/s through each long-connection adapter into the inbox,
against a bare WebSocket loop fed by the same gateway in the same run.

    python bench/stream.py [--messages 2000] [--rounds 3]

The gateway runs in this process and speaks both protocols on loopback: DingTalk Stream
(connections/open, ticket, CALLBACK frames with robot messages, acks by messageId) and the
WeCom AI bot socket (subscribe, ping, aibot_msg_callback frames). Each client runs in its own
child process:
- full: `lianjian serve` (bot.server.make_app: migrations, SQLite file inbox, inbox worker with
  the real dispatcher, sender) with `[dingtalk] mode = "stream"` or `[wecom_aibot] mode =
  "websocket"`;
- bare: a plain aiohttp WebSocket loop that parses each frame and answers it at once (DingTalk:
  the ack; WeCom, which takes no ack: an echo frame, so the gateway sees it finish) — nothing
  stored.
A round pushes a burst of messages as fast as the socket takes them; throughput is messages /
(first push → last ack, or → last inbox row for the WeCom full client). Latency: DingTalk frame →
ack seen by the gateway; WeCom frame → inbox insert (the row's received_at), both in the bursts
(which include queueing behind the burst) and in a paced run at 200 messages/s. The ratio is the
median of per-round full/bare ratios. Targets: ≥ 0.5 of bare; p99 frame → ack < 50 ms (paced).
The last line printed is one JSON object. `--platforms ding` runs one of the two;
LIANJIAN_BENCH_PROFILE=/tmp/prof writes a cProfile of each full server to /tmp/prof.<platform>.
All processes share the machine's cores: on a loaded machine the p99 is the scheduler's.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing as mp
import secrets
import socket
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from profiling import run_profiled

APP_KEY, APP_SECRET, BOT_ID, BOT_SECRET = "dingbench", "bench-secret", "aibbench", "bench-bot"
TOPIC = "/v1.0/im/bot/messages/get"
PACED_RATE = 200.0  # messages/s for the latency run (a busy county office, many times over)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    """Both platforms' gateways; remembers when each message was pushed and answered."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.sockets: dict[str, web.WebSocketResponse] = {}  # client name -> socket
        self.pushed: dict[str, float] = {}
        self.answered: dict[str, float] = {}
        self.expected = 0
        self.waiting: dict[str, asyncio.Event] = {}
        app = web.Application()
        app.router.add_post("/v1.0/gateway/connections/open", self.open)
        app.router.add_post("/v1.0/oauth2/accessToken", self.token)
        app.router.add_post("/robot/sendBySession", self.session_send)
        app.router.add_get("/ding", self.ding)
        app.router.add_get("/wecom", self.wecom)
        self.runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def open(self, request: web.Request) -> web.Response:
        body = await request.json()
        who = "bare" if body.get("ua") == "bare" else "full"
        return web.json_response(
            {
                "endpoint": f"ws://127.0.0.1:{self.port}/ding?who={who}",
                "ticket": secrets.token_hex(8),
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response({"accessToken": "t" * 32, "expireIn": 7200})

    async def session_send(self, request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def ding(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets["ding-" + request.query.get("who", "full")] = ws
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self._answer(json.loads(msg.data)["headers"]["messageId"])
        return ws

    async def wecom(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            req_id = frame["headers"]["req_id"]
            if frame.get("cmd") == "aibot_subscribe":
                self.sockets["wecom-" + frame["body"].get("scene_name", "full")] = ws
                await ws.send_json({"headers": {"req_id": req_id}, "errcode": 0, "errmsg": "ok"})
            elif frame.get("cmd") == "echo":
                self._answer(frame["body"]["msgid"])
            else:  # ping, replies and pushes: WeCom answers every command on its req_id
                await ws.send_json({"headers": {"req_id": req_id}, "errcode": 0, "errmsg": "ok"})
        return ws

    def _answer(self, key: str) -> None:
        if key in self.pushed and key not in self.answered:
            self.answered[key] = time.perf_counter()
            if len(self.answered) == self.expected:
                self.waiting["all"].set()

    async def burst(self, client: str, n: int, rate: float = 0.0) -> list[str]:
        """Push n messages to one client, as fast as the socket takes them or at `rate` per
        second; returns their keys (messageId or msgid)."""
        ws = self.sockets[client]
        self.pushed, self.answered, self.expected = {}, {}, n
        self.waiting["all"] = asyncio.Event()
        keys = []
        now_ms = int(time.time() * 1000)
        start = time.perf_counter()
        for i in range(n):
            if rate:
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            msgid = secrets.token_hex(10)
            if client.startswith("ding"):
                frame = ding_frame(msgid, i, now_ms, self.base)
            else:
                frame = wecom_frame(msgid, i)
            self.pushed[msgid] = time.perf_counter()
            await ws.send_str(frame)
            keys.append(msgid)
        return keys


def ding_frame(key: str, i: int, now_ms: int, base: str) -> str:
    data = {
        "conversationId": "cidbench",
        "conversationType": "1",
        "msgId": key,
        "msgtype": "text",
        "text": {"content": f"帮助 {i}"},
        "senderStaffId": f"bench{i}",
        "senderNick": "压测",
        "robotCode": APP_KEY,
        "createAt": now_ms,
        "sessionWebhook": f"{base}/robot/sendBySession?session=s{i}",
        "sessionWebhookExpiredTime": now_ms + 5_400_000,
    }
    return json.dumps(
        {
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "messageId": key,
                "topic": TOPIC,
                "time": str(now_ms),
                "contentType": "application/json",
            },
            "data": json.dumps(data, ensure_ascii=False),
        }
    )


def wecom_frame(key: str, i: int) -> str:
    return json.dumps(
        {
            "cmd": "aibot_msg_callback",
            "headers": {"req_id": f"srv-{key}"},
            "body": {
                "msgid": key,
                "aibotid": BOT_ID,
                "chattype": "single",
                "from": {"userid": f"bench{i}"},
                "msgtype": "text",
                "text": {"content": f"帮助 {i}"},
            },
        },
        ensure_ascii=False,
    )


# ---------------------------------------------------------------- child processes


def run_full(platform: str, gateway_base: str, db: str) -> None:
    from bot.config import load_settings
    from bot.server import make_app

    section: dict[str, Any]
    if platform == "ding":
        section = {
            "dingtalk": {
                "app_key": APP_KEY,
                "app_secret": APP_SECRET,
                "robot_code": APP_KEY,
                "api_base": gateway_base,
                "oapi_base": gateway_base,
                "mode": "stream",
            }
        }
    else:
        section = {
            "wecom_aibot": {
                "mode": "websocket",
                "bot_id": BOT_ID,
                "secret": BOT_SECRET,
                "ws_url": gateway_base.replace("http", "ws") + "/wecom",
            }
        }
    port = free_port()
    settings = load_settings(
        database_url=db,
        host="127.0.0.1",
        port=port,
        link_secret="b" * 40,
        scheduler={"enabled": False},
        log_level="WARNING",
        **section,
    )
    run_profiled(
        lambda: web.run_app(
            make_app(settings), host="127.0.0.1", port=port, access_log=None, print=None
        ),
        platform,
    )


def run_bare(platform: str, gateway_base: str) -> None:
    asyncio.run(bare_loop(platform, gateway_base))


async def bare_loop(platform: str, gateway_base: str) -> None:
    """The floor: parse each frame and answer it at once; nothing stored."""
    async with aiohttp.ClientSession() as http:
        if platform == "ding":
            async with http.post(
                gateway_base + "/v1.0/gateway/connections/open", json={"ua": "bare"}
            ) as resp:
                url = (await resp.json())["endpoint"]
        else:
            url = gateway_base.replace("http", "ws") + "/wecom"
        async with http.ws_connect(url) as ws:
            if platform != "ding":
                await ws.send_json(
                    {
                        "cmd": "aibot_subscribe",
                        "headers": {"req_id": "s"},
                        "body": {"bot_id": BOT_ID, "secret": BOT_SECRET, "scene_name": "bare"},
                    }
                )
            async for msg in ws:
                frame = json.loads(msg.data)
                if platform == "ding":
                    answer = {
                        "code": 200,
                        "headers": {
                            "contentType": "application/json",
                            "messageId": frame["headers"]["messageId"],
                        },
                        "message": "OK",
                        "data": json.dumps({"response": None}),
                    }
                elif frame.get("cmd") == "aibot_msg_callback":
                    answer = {
                        "cmd": "echo",
                        "headers": {"req_id": frame["headers"]["req_id"]},
                        "body": {"msgid": frame["body"]["msgid"]},
                    }
                else:
                    continue
                await ws.send_str(json.dumps(answer))


# ---------------------------------------------------------------- measuring


def inbox_times(db: str, keys: list[str]) -> dict[str, float]:
    """event_id -> received_at (epoch seconds) of the rows stored so far."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT event_id, received_at FROM inbox").fetchall()
    wanted = set(keys)
    return {
        k: dt.datetime.fromisoformat(str(v)).replace(tzinfo=dt.UTC).timestamp()
        for k, v in rows
        if k in wanted
    }


async def drained(db: str) -> None:
    """Wait until the full server's dispatcher has handled every stored event, so a round's
    burst does not compete with the previous round's handling."""
    for _ in range(3000):
        with sqlite3.connect(db) as conn:
            (pending,) = conn.execute(
                "SELECT count(*) FROM inbox WHERE state NOT IN ('done', 'dead')"
            ).fetchone()
        if not pending:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the inbox did not drain")


def inbox_rows_after(db: str, last_id: int) -> int:
    with sqlite3.connect(db) as conn:
        (n,) = conn.execute("SELECT count(*) FROM inbox WHERE id > ?", (last_id,)).fetchone()
    return int(n)


def inbox_last_id(db: str) -> int:
    with sqlite3.connect(db) as conn:
        (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM inbox").fetchone()
    return int(last)


async def one_burst(
    gw: Gateway, client: str, n: int, db: str | None, rate: float = 0.0
) -> dict[str, Any]:
    last_id = inbox_last_id(db) if db is not None else 0
    wall0, perf0 = time.time(), time.perf_counter()
    keys = await gw.burst(client, n, rate)
    if db is None or client.startswith("ding"):
        await asyncio.wait_for(gw.waiting["all"].wait(), 120)
        end = max(gw.answered.values())
        latencies = [gw.answered[k] - gw.pushed[k] for k in keys]
    else:  # WeCom full: no ack frame; done when every message is in the inbox
        # the poll only counts the burst's rows (an index range), so the gateway's process
        # takes little from the server it measures; their times are read once, at the end
        for _ in range(6000):
            if inbox_rows_after(db, last_id) >= n:
                break
            await asyncio.sleep(0.02)
        stored = inbox_times(db, keys)
        if len(stored) != n:
            raise RuntimeError(f"only {len(stored)} of {n} stored")
        latencies = [stored[k] - (wall0 + gw.pushed[k] - perf0) for k in keys]
        end = perf0 + max(stored.values()) - wall0
    rate = n / max(end - perf0, 1e-9)
    if db is not None and client.startswith("ding") and len(inbox_times(db, keys)) != n:
        raise RuntimeError("an acked DingTalk message is missing from the inbox")
    qs = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"rate": rate, "p50_ms": qs[49] * 1000, "p99_ms": qs[98] * 1000}


async def wait_for_socket(gw: Gateway, name: str) -> None:
    for _ in range(600):
        if name in gw.sockets:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{name} never connected")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    gw = Gateway()
    await gw.start()
    ctx = mp.get_context("spawn")
    tmp = Path(tempfile.mkdtemp(prefix="lianjian-bench-stream-"))
    procs = []
    dbs = {p: str(tmp / f"{p}.sqlite3") for p in ("ding", "wecom")}
    for platform in args.platforms:
        procs.append(
            ctx.Process(target=run_full, args=(platform, gw.base, dbs[platform]), daemon=True)
        )
        procs.append(ctx.Process(target=run_bare, args=(platform, gw.base), daemon=True))
    for proc in procs:
        proc.start()
    results: dict[str, Any] = {}
    try:
        for platform in args.platforms:
            for who in ("full", "bare"):
                await wait_for_socket(gw, f"{platform}-{who}")
            full_runs, bare_runs = [], []
            await one_burst(gw, f"{platform}-full", 200, dbs[platform])  # warm-up
            await drained(dbs[platform])
            for r in range(args.rounds):
                bare = await one_burst(gw, f"{platform}-bare", args.messages, None)
                full = await one_burst(gw, f"{platform}-full", args.messages, dbs[platform])
                bare_runs.append(bare)
                full_runs.append(full)
                print(
                    f"round {r + 1} {platform:>5}: full {full['rate']:7.0f} msg/s "
                    f"(p99 {full['p99_ms']:6.1f} ms)  bare {bare['rate']:7.0f} msg/s "
                    f"(p99 {bare['p99_ms']:6.1f} ms)",
                    flush=True,
                )
                await drained(dbs[platform])
            paced = await one_burst(
                gw,
                f"{platform}-full",
                int(PACED_RATE * args.paced_seconds),
                dbs[platform],
                rate=PACED_RATE,
            )
            print(
                f"{platform:>5} full at {PACED_RATE:.0f} msg/s: p50 {paced['p50_ms']:.1f} ms, "
                f"p99 {paced['p99_ms']:.1f} ms",
                flush=True,
            )
            ratio = statistics.median(
                f["rate"] / b["rate"] for f, b in zip(full_runs, bare_runs, strict=True)
            )
            results[platform] = {
                "full_msgs_per_s": round(statistics.median(f["rate"] for f in full_runs)),
                "bare_msgs_per_s": round(statistics.median(b["rate"] for b in bare_runs)),
                "ratio": round(ratio, 3),
                "full_p50_ms": round(statistics.median(f["p50_ms"] for f in full_runs), 2),
                "full_p99_ms": round(statistics.median(f["p99_ms"] for f in full_runs), 2),
                "paced_p50_ms": round(paced["p50_ms"], 2),
                "paced_p99_ms": round(paced["p99_ms"], 2),
            }
    finally:
        for proc in procs:
            proc.terminate()
            proc.join(10)
        await gw.runner.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    parser.add_argument(
        "--platforms", nargs="+", choices=("ding", "wecom"), default=["ding", "wecom"]
    )
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    for name, r in results.items():
        label = "DingTalk Stream → ack" if name == "ding" else "WeCom AI bot → inbox"
        print(
            f"{label}: full {r['full_msgs_per_s']} msg/s vs bare {r['bare_msgs_per_s']} "
            f"msg/s, ratio {r['ratio']}; in the burst p50 {r['full_p50_ms']} ms, p99 "
            f"{r['full_p99_ms']} ms; at {PACED_RATE:.0f} msg/s p50 {r['paced_p50_ms']} ms, "
            f"p99 {r['paced_p99_ms']} ms"
        )
    print(
        json.dumps(
            {
                "bench": "stream",
                "dingtalk": results.get("ding"),
                "wecom_aibot": results.get("wecom"),
                "targets": {"ratio": 0.5, "p99_ms": 50},
            }
        )
    )


if __name__ == "__main__":
    main()

"""Issue 11, clean shutdown: `lianjian serve` stops on SIGTERM in order — no new requests,
the workers stopped with what is in flight finished or handed back, the database pool closed
last — and exits 0 with ordinary log lines only, on SQLite and PostgreSQL. A second SIGTERM
during the shutdown used to cancel the clean-up itself (aiohttp's run_app): a CancelledError
traceback from the pool closing its connection, logged as an ERROR, and exit status 1."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import load_settings
from bot.scheduler import Job, Jobs
from bot.server import serve
from core.audit import append
from core.changes import Ctx
from core.clock import FixedClock
from core.models import AuditEvent
from tests.fakes.wecom import WeComCallbackClient, text_xml
from tests.server_helpers import make_services, random_aes_key
from tests.test_crash import CORP, MSG_ID_BASE, TOKEN, Server, fake_wecom, free_port, write_config


@pytest.mark.parametrize("signals", [1, 2], ids=["sigterm", "sigterm-twice"])
async def test_sigterm_stops_serve_in_order_without_a_traceback(
    tmp_path: Path, db_url: str, signals: int
) -> None:
    port, aes = free_port(), random_aes_key()
    config, log = tmp_path / "config.toml", tmp_path / "serve.log"
    async with fake_wecom() as api, aiohttp.ClientSession() as http:
        write_config(config, db_url, port, aes, api.base)
        config.write_text(
            config.read_text().replace('log_level = "WARNING"', 'log_level = "INFO"'),
            encoding="utf-8",
        )
        server = Server(config, port, log)
        server.start()
        assert server.proc is not None
        proc = server.proc
        try:
            await server.ready(http)
            # work in flight when the signal comes: callbacks stored, being handled and sent
            client = WeComCallbackClient(
                TOKEN, aes, CORP, f"http://127.0.0.1:{port}/wecom/callback"
            )
            try:
                for i in range(8):
                    xml = text_xml(
                        f"stranger{i}",
                        "你好",
                        msg_id=str(MSG_ID_BASE + i),
                        created=int(time.time()),
                        corp_id=CORP,
                    )
                    status, _ = await client.post(xml)
                    assert status == 200
            finally:
                await client.close()
            for _ in range(signals):
                proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.05)
            code = await asyncio.to_thread(proc.wait, 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = await asyncio.to_thread(log.read_text, errors="replace")
    assert code == 0, text
    assert "Traceback" not in text, text
    assert " ERROR " not in text and " CRITICAL " not in text, text
    assert "SIGTERM: stopping" in text and text.rstrip().endswith("stopped"), text


async def test_a_scheduled_job_running_at_shutdown_finishes_and_commits(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """APScheduler's shutdown cancels the job coroutines it started; the job itself runs on
    in its own task, and stopping waits for it: its transaction commits, nothing is cut off
    holding a connection."""
    started = asyncio.Event()

    async def slow_tick(ctx: Ctx) -> None:
        started.set()
        await asyncio.sleep(0.3)
        await append(
            ctx.session, at=ctx.clock.now(), actor="system", action="tick.done", subject="t"
        )

    jobs = Jobs(make_services(sessionmaker, clock))
    trigger = asyncio.create_task(jobs.fire(Job("slow", slow_tick, None, 1)))
    await started.wait()
    trigger.cancel()  # what the scheduler's shutdown does to the coroutine it runs
    await jobs.stop(grace_s=10)
    async with sessionmaker() as session:
        done = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "tick.done")
        )
    assert done == 1


async def test_a_signal_taken_as_the_shutdown_ends_says_nothing_after_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Found flaky in a check run (sigterm-twice above, PostgreSQL): a second SIGTERM that the
    loop read in the turn that resumed the shutdown after its clean-up was handled after the
    signal handlers were removed, and logged "SIGTERM again: already stopping" after "stopped".
    Here that second signal comes exactly then, in process: "stopped" stays the last word."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'database_url = "{tmp_path / "serve.sqlite3"}"\nhost = "127.0.0.1"\n'
        f'port = {free_port()}\nlink_secret = "{"c" * 40}"\n[scheduler]\nenabled = false\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    cleanup = web.AppRunner.cleanup

    async def cleanup_then_signal(runner: web.AppRunner) -> None:
        await cleanup(runner)
        os.kill(os.getpid(), signal.SIGTERM)  # delivered at once: its wake-up byte waits
        # two turns of the loop: in the first it reads the wake-up byte and queues the
        # handler for the second, in which the shutdown resumes first and finishes
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    monkeypatch.setattr(web.AppRunner, "cleanup", cleanup_then_signal)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    caplog.set_level(logging.INFO, logger="bot.server")
    try:
        serving = asyncio.create_task(serve(settings))
        async with aiohttp.ClientSession() as http:
            while True:
                assert not serving.done(), serving
                with contextlib.suppress(aiohttp.ClientError):
                    url = f"http://127.0.0.1:{settings.port}/healthz"
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(serving, 60)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        gc.unfreeze()  # serve froze what the test process had built
    said = [r.getMessage() for r in caplog.records if r.name == "bot.server"]
    assert "SIGTERM: stopping" in said and said[-1] == "stopped", said

"""Issue 11, clean shutdown: `lianjian serve` stops on SIGTERM in order — no new requests,
the workers stopped with what is in flight finished or handed back, the database pool closed
last — and exits 0 with ordinary log lines only, on SQLite and PostgreSQL. A second SIGTERM
during the shutdown used to cancel the clean-up itself (aiohttp's run_app): a CancelledError
traceback from the pool closing its connection, logged as an ERROR, and exit status 1."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.scheduler import Job, Jobs
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

"""What both long-connection clients share (bot/platforms/longconn.py): frames read while a
commit runs are stored together, each is acknowledged only after its store, and the inbox
worker is told to give way from the first waiting frame until the last one is answered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from bot.platforms.longconn import StoreBatches
from core.messages import Event
from tests.fakes import wait_until


def event(n: int) -> Event:
    return Event(platform="dingtalk", event_id=f"m{n}", user_id="u", text="帮助")


async def test_frames_wait_for_one_commit_and_busy_spans_store_and_ack() -> None:
    log: list[str] = []
    commit = asyncio.Event()
    batches_seen: list[int] = []

    async def sink(events: list[Event]) -> list[bool]:
        batches_seen.append(len(events))
        log.append(f"store {len(events)}")
        await commit.wait()
        log.append("committed")
        return [True] * len(events)

    @contextlib.contextmanager
    def busy() -> Iterator[None]:
        log.append("busy")
        yield
        log.append("idle")

    async def answer(keys: list[str], ok: bool) -> None:
        log.extend(f"ack {key} {ok}" for key in keys)

    batches = StoreBatches(sink, 100, answer, busy)
    await batches.put(event(1), "1")
    await asyncio.sleep(0.01)  # the first store is under way…
    for n in (2, 3):
        await batches.put(event(n), str(n))
    assert log == ["busy", "store 1"], "nothing acked before its commit"
    commit.set()
    await wait_until(lambda: "ack 3 True" in log)
    await wait_until(lambda: log[-1] == "idle")
    assert batches_seen == [1, 2], "frames read during a commit go into the next one"
    assert log == [
        "busy",
        "store 1",
        "committed",
        "ack 1 True",
        "store 2",
        "committed",
        "ack 2 True",
        "ack 3 True",
        "idle",
    ]
    await batches.close(1.0)


async def test_a_failed_store_acks_nothing_as_stored() -> None:
    acks: list[bool] = []

    async def sink(events: list[Event]) -> list[bool]:
        raise RuntimeError("database gone")

    async def answer(keys: list[str], ok: bool) -> None:
        acks.extend(ok for _ in keys)

    batches = StoreBatches(sink, 100, answer)
    await batches.put(event(1), "m1")
    await wait_until(lambda: acks == [False])
    await batches.close(1.0)

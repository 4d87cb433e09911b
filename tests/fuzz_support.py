"""The rig the fuzz suite (tests/test_fuzz.py) drives: the whole `serve` app on loopback with
WeCom (app and AI bot callbacks), DingTalk (HTTP callbacks), the simulator, the signed pages and
the public pages, fake platforms for the replies, and a county with a locked task (cases,
groups) and a pending invitation, so hostile input reaches every layer behind valid signatures.

Hypothesis runs its examples in a worker thread; each example's coroutine runs on the test's
event loop, where the server, the workers and the database live (`Fuzzer.run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.dispatch import Dispatcher
from bot.pages.base import csrf_token
from bot.platforms.dingtalk import DingTalkAdapter
from bot.platforms.wecom import WeComAdapter
from bot.platforms.wecom_aibot import WeComAiBotAdapter, WeComAiBotSettings
from bot.replays import SignatureLedger
from bot.sender import Sender
from bot.services import Services
from bot.workers import InboxWorker
from core import images
from core.audit import verify_chain
from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.consultation import opening
from core.links import sign_link
from core.messages import Platform
from core.models import (
    Attachment,
    Case,
    CaseResult,
    ChatBinding,
    ChatPlatform,
    GroupMember,
    InboxEvent,
    Invitation,
    Officer,
    OutboxMessage,
)
from core.officers import set_account
from core.states import InboxState, OutboxState
from tests import factories as f
from tests.dispatch_support import send, text_event
from tests.fakes import RateLimiter
from tests.fakes.dingtalk import DingTalkCallbackClient, FakeDingTalk
from tests.fakes.wecom import WeComCallbackClient
from tests.fakes.wecom_aibot import AiBotCallbackClient, FakeWeComWithAiBot
from tests.server_helpers import dingtalk_settings, make_services, random_aes_key, wecom_settings

BEACON_OUT = china_noon(dt.date(2026, 3, 4))  # the default beacon (3 March's 福彩3D) is out
# By design the AI bot's card click is answered in its own callback or not at all (WeCom drops
# it after 5 s); here the callback returns before the worker runs, so the answer is given up
# (dead, logged) — expected, unlike any other dead reply or logged error.
CARD_GIVEN_UP = "card_expired"
WECOM_TOKEN, AIBOT_TOKEN = "fuzz-token", "fuzz-aibot-token"

# Strings that broke parsers before (issue 11 defect 5) or break them often: NUL (PostgreSQL
# refuses it in text), lone surrogates (cannot be encoded), digit look-alikes ('²'.isdigit()),
# numbers past 64 bits or float range, markup that closes CDATA or opens templates, bidi and
# zero-width characters, full-width spaces, very long words.
NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff帮助",
    "²",
    "٣",
    "9" * 25,
    "-1",
    "0",
    "1e400",
    "NaN",
    "]]>",
    "<![CDATA[x]]>",
    "<xml><a>&amp;</a></xml>",
    "&lt;&#0;&#xD800;",
    "{{ 7 * 7 }}",
    "{% raw %}",
    "%s%n",
    "' OR 1=1 --",
    '"; DROP TABLE officer; --',
    "\u202e反向",
    "\u200b",
    "\u3000",
    "\r\n\r\n",
    "\t",
    "𠀀𪚥",
    "😀" * 10,
    "检" * 3000,
    "x" * 70_000,
    "LJ-2026-001",
    "LJ-2026-001-T1",
    "LJ-2026-001-I1",
    "lj-2026-001-0001",
    "LJ-2026-002",
    "KC-2026-0001",
    "LJ-9999-999",
    "2026-02-30",
    "3月20日",
    "13月40日",
    "今天",
    "99999999999999999999年1月1日",
    "91330424MA28AQAQXU",
    "/etc/passwd",
    "../../x",
    "javascript:alert(1)",
    "[x](lianjian-page:result/case:1)",
]

ALL_CHARS = st.characters(exclude_categories=())  # surrogates too
hostile_text = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.text(alphabet=ALL_CHARS, max_size=40),
    st.text(alphabet="0123456789-年月日 :.²", max_size=20),
)
big_ints = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64, -(2**63) - 1, 10**30]),
)


@dataclass
class Rig:
    services: Services
    server: TestServer
    http: aiohttp.ClientSession
    clock: FixedClock
    world: f.World
    task_code: str
    invite_code: str
    cases: list[Case]
    members: list[Officer]  # active group members of cases[0]
    invitation: Invitation  # pending, partners[1]'s, of invite_code
    wecom: WeComCallbackClient
    aibot: AiBotCallbackClient
    ding: DingTalkCallbackClient
    fake_ding: FakeDingTalk
    inbox: InboxWorker
    sender: Sender
    officers: list[Officer]  # one of each role and department
    image_sha: str  # a stored picture, as a summary chart is (/h5/image, /sim/api/image)
    log: list[logging.LogRecord] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def token(self, officer: Officer, obj: str, action: str, *, days: int = 30) -> str:
        expires = int((self.clock.now() + dt.timedelta(days=days)).timestamp())
        return sign_link(self.services.link_secret, officer.id, obj, action, expires)

    def csrf(self, token: str) -> str:
        return csrf_token(self.services.link_secret, token)

    def tick(self) -> None:
        """A millisecond on: each DingTalk callback needs its own (timestamp, sign) pair."""
        self.clock.advance(dt.timedelta(milliseconds=1))

    @property
    def origin(self) -> str:
        """The public address, as a same-site form's Origin header names it."""
        return self.services.public_base_url

    async def inbox_count(self) -> int:
        async with self.services.sessionmaker() as s:
            return int(await s.scalar(select(func.count()).select_from(InboxEvent)) or 0)

    async def page_state(self) -> tuple[Any, ...]:
        """What a page's form can change: results, reviews' audit, the invitation's answer, the
        attachments. A refused post (4xx) must leave all of it as it was."""
        async with self.services.sessionmaker() as s:
            return (
                await s.scalar(select(func.count()).select_from(CaseResult)),
                await s.scalar(select(func.count()).select_from(Attachment)),
                await s.scalar(select(Invitation.state).where(Invitation.id == self.invitation.id)),
                tuple(await s.scalars(select(Case.state).order_by(Case.id))),
            )

    async def drain(self) -> None:
        """What the workers do after a request: handle every stored event, deliver replies."""
        while await self.inbox.run_once():
            pass
        await self.sender.run_once()

    async def check_stored_whole(self) -> None:
        """Nothing half done: every stored event handled (none pending or dead), no reply
        dead, no log record of an unexpected error or a traceback."""
        async with self.services.sessionmaker() as s:
            stuck = (
                await s.execute(
                    select(InboxEvent.id, InboxEvent.state, InboxEvent.error).where(
                        InboxEvent.state != InboxState.DONE
                    )
                )
            ).all()
            dead = (
                await s.execute(
                    select(OutboxMessage.id, OutboxMessage.last_error).where(
                        OutboxMessage.state == OutboxState.DEAD,
                        OutboxMessage.last_error.not_like(f"%{CARD_GIVEN_UP}%"),
                    )
                )
            ).all()
        assert not stuck, f"events not handled: {stuck}"
        assert not dead, f"replies dead: {dead}"
        bad = [
            r
            for r in self.log
            if (r.exc_info or r.levelno >= logging.ERROR) and CARD_GIVEN_UP not in r.getMessage()
        ]
        assert not bad, "\n".join(
            f"{r.name}: {r.getMessage()}\n"
            + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
            for r in bad
        )

    async def check_audit_chain(self) -> None:
        async with self.services.sessionmaker() as s:
            assert await verify_chain(s) == []


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@contextlib.contextmanager
def collecting_logs(into: list[logging.LogRecord]) -> Iterator[None]:
    handler = _Collect(into)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


async def _county(
    sm: async_sessionmaker[AsyncSession], services: Services, clock: FixedClock, robot_url: str
) -> tuple[f.World, str, str, Invitation]:
    """Two partners, a task ready to draw (both accepted) and a second task whose invitation to
    partners[1] is pending; accounts bound on WeCom and DingTalk for everyone."""
    async with sm() as s, s.begin():
        w = await f.world(s, partners=2, inspectors=3, n_targets=40)
        ctx = Ctx(session=s, clock=clock, rules=services.rules)
        task = await f.ready_task(ctx, w)
        second = await f.draft_task(ctx, w, title="2026年第二次联合抽查")
        [inv] = await opening.open_consultation(
            f.as_actor(ctx, w.lead.liaison), second, [w.partners[1].dep.id]
        )
        for d in (w.lead, *w.partners):
            s.add(ChatBinding(platform="wecom", department_id=d.dep.id, webhook_url=robot_url))
        s.add(ChatBinding(platform="wecom", is_office=True, webhook_url=robot_url))
        for o in everyone(w):
            set_account(o, ChatPlatform.WECOM, f"wx-{o.code}")
            set_account(o, ChatPlatform.DINGTALK, f"dd-{o.code}")
        return w, task.code, second.code, inv


def everyone(w: f.World) -> list[Officer]:
    people = [w.admin] if w.admin is not None else []
    for d in (w.lead, *w.partners):
        people += [d.liaison, d.leader, *d.inspectors]
    return people


@contextlib.asynccontextmanager
async def fuzz_rig(sm: async_sessionmaker[AsyncSession]) -> AsyncIterator[Rig]:
    clock = FixedClock(china_noon(dt.date(2026, 3, 2)))
    fake_wecom = await FakeWeComWithAiBot(clock=clock).start()
    fake_ding = await FakeDingTalk(clock=clock).start()
    # the fakes' per-minute limits would only make the sender wait; they are not under test here
    fake_ding.robot_limit = RateLimiter(clock, per_minute=10**9)
    fake_wecom.webhook_limit = RateLimiter(clock, per_minute=10**9)
    services = make_services(
        sm,
        clock,
        sender={"app_user_per_minute": 10**6, "group_robot_per_minute": 10**6},
    )
    wecom_aes = random_aes_key()
    wecom = WeComAdapter(wecom_settings(fake_wecom, WECOM_TOKEN, wecom_aes), clock)
    aibot = WeComAiBotAdapter(
        WeComAiBotSettings(
            token=AIBOT_TOKEN,
            encoding_aes_key=(aibot_aes := random_aes_key()),
            response_url_base=fake_wecom.base,
            passive_wait_s=0.01,
        ),
        clock,
        app=wecom,
    )
    ding = DingTalkAdapter(
        dingtalk_settings(
            fake_ding,
            # cards call back over HTTP, so /dingtalk/card/callback is a route to fuzz; the
            # click's answer is not waited for (no sender runs while a request is open)
            card_template_id="fuzz-card.schema",
            card_answer_wait_s=0.01,
        ),
        clock,
        SignatureLedger(services),
        public_base_url="http://127.0.0.1",
    )
    services.adapters.update(
        {Platform.WECOM: wecom, Platform.WECOM_AIBOT: aibot, Platform.DINGTALK: ding}
    )
    services.settings.simulator.enabled = True
    w, code, second, inv = await _county(sm, services, clock, fake_wecom.webhook_url())
    dispatcher = Dispatcher(services)
    await send(sm, dispatcher, text_event(w.lead.liaison.code, f"抽取 {code}"))
    clock.set(BEACON_OUT)
    await send(sm, dispatcher, text_event(w.lead.liaison.code, f"确认抽取 {code} 4 1 7"))
    async with sm() as s:
        cases = list(await s.scalars(select(Case).where(Case.task_id.is_not(None))))
        members = list(
            await s.scalars(
                select(Officer)
                .join(GroupMember, GroupMember.officer_id == Officer.id)
                .where(GroupMember.case_id == cases[0].id, GroupMember.active.is_(True))
            )
        )
        pending = await s.get(Invitation, inv.id)
    assert cases and members and pending is not None
    async with sm() as s, s.begin():
        picture = await images.store(s, _png(), now=clock.now())
    server = TestServer(create_app(services, workers=()), host="127.0.0.1")
    await server.start_server()
    # signed pages compare a form's Origin with the public address: this server's own
    services.public_base_url = str(server.make_url("")).rstrip("/")
    http = aiohttp.ClientSession()
    rig = Rig(
        services=services,
        server=server,
        http=http,
        clock=clock,
        world=w,
        task_code=code,
        invite_code=second,
        cases=cases,
        members=members,
        invitation=pending,
        wecom=WeComCallbackClient(
            WECOM_TOKEN, wecom_aes, fake_wecom.corp_id, rig_url(server, "/wecom/callback"), clock
        ),
        aibot=AiBotCallbackClient(
            AIBOT_TOKEN, aibot_aes, rig_url(server, "/wecom/aibot/callback"), clock
        ),
        ding=DingTalkCallbackClient(
            fake_ding.app_secret, rig_url(server, "/dingtalk/callback"), clock
        ),
        fake_ding=fake_ding,
        inbox=InboxWorker(services, dispatcher),
        sender=Sender(services),
        officers=everyone(w),
        image_sha=picture.sha256,
    )
    await rig.drain()
    try:
        with collecting_logs(rig.log):
            yield rig
    finally:
        for closing in (rig.wecom, rig.aibot, rig.ding):
            await closing.close()
        await http.close()
        await server.close()
        for adapter in services.adapters.values():
            await adapter.close()
        await fake_wecom.close()
        await fake_ding.close()


def _png() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (4, 4), (9, 9, 9)).save(out, format="PNG")
    return out.getvalue()


def rig_url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


# ---------------------------------------------------------------- running hypothesis


@dataclass
class Fuzzer:
    """Runs a property over a strategy for `examples` cases and counts what actually ran."""

    examples: int
    full: bool
    ran: int = 0
    before_each: Callable[[], None] = lambda: None  # e.g. forget the previous case's log
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> int:
        return next(self._ids)

    async def run(
        self, strategy: st.SearchStrategy[Any], check: Callable[[Any], Coroutine[Any, Any, None]]
    ) -> int:
        loop = asyncio.get_running_loop()
        start = self.ran

        @settings(
            max_examples=self.examples,
            deadline=None,
            database=None,
            derandomize=not self.full,  # the short run is the same on every machine
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(strategy)
        def prop(value: Any) -> None:
            self.ran += 1
            self.before_each()
            asyncio.run_coroutine_threadsafe(check(value), loop).result(timeout=120)

        await asyncio.to_thread(prop)
        return self.ran - start

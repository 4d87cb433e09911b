"""The dispatcher's middleware (unknown users, savepoints, per-officer lock, conversation steps),
command parsing, typed card payloads and quick draws — through Dispatcher.handle on a real DB."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.platforms.dingtalk import DingTalkExtras
from core.cards import MAX_KEY_BYTES, CardAction, InvitationAction, unpack_action
from core.errors import ValidationFailed
from core.models import AuditEvent, ChatPlatform, Conversation, Draw, Officer, OutboxMessage
from core.officers import set_account
from handlers.base import Args, match_command
from handlers.commands import COMMANDS
from tests import factories as f
from tests.dispatch_support import (
    audit_rows,
    bodies,
    chat_world,
    make_dispatcher,
    ready_world,
    send,
    text_event,
)


@pytest.fixture
async def people(sessionmaker: async_sessionmaker[AsyncSession]) -> f.World:
    return await chat_world(sessionmaker)


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "name", "rest"),
    [
        ("任务", "任务", ""),
        ("任务 LJ-2026-001", "任务", "LJ-2026-001"),
        ("任务LJ-2026-001", "任务", "LJ-2026-001"),
        ("@联检助手 任务\u3000lj-2026-001", "任务", "lj-2026-001"),
        ("ｈｅｌｐ", "帮助", ""),
        ("？", "帮助", ""),
        ("确认抽取 LJ-2026-001 386", "确认抽取", "LJ-2026-001 386"),
        ("拒绝 LJ-2026-001 人手不足，无法参加。", "拒绝", "LJ-2026-001 人手不足，无法参加。"),
        ("JS LJ-2026-001", "接受", "LJ-2026-001"),
    ],
)
def test_commands_are_recognised_in_every_spelling(text: str, name: str, rest: str) -> None:
    matched = match_command(text, COMMANDS)
    assert matched is not None
    command, args = matched
    assert (command.name, args.raw) == (name, rest)


@pytest.mark.parametrize("text", ["任务重，人手不足", "helpme", "你好"])
def test_words_that_merely_start_like_a_command_are_not_commands(text: str) -> None:
    assert match_command(text, COMMANDS) is None


def test_args_keep_the_officers_own_punctuation_in_free_text() -> None:
    args = Args("ＬＪ-2026-001\u3000本季度执法力量，已全部投入专项整治。")
    assert args.code(0) == "LJ-2026-001"
    assert args.rest_after(1) == "本季度执法力量，已全部投入专项整治。"
    assert Args("LJ-2026-001 SX01，sx02、SX03").list_after(1) == ["SX01", "sx02", "SX03"]


# ---------------------------------------------------------------- card payloads


def test_card_payload_round_trips_and_rejects_anything_else() -> None:
    key = InvitationAction(action="decline", invitation_id=12).pack()
    assert key == "inv:decline:12"
    assert unpack_action(key) == InvitationAction(action="decline", invitation_id=12)
    for bad in (
        "inv:decline",
        "inv:maybe:12",
        "inv:accept:-1",
        "inv:accept:0",
        "inv:accept:12:1",
        "xyz:accept:12",
        "",
        "inv:accept: 12",
        "inv:accept:1２",
    ):
        with pytest.raises(ValidationFailed, match="按钮已失效"):
            unpack_action(bad)


class _WideAction(CardAction):
    """Sixteen 64-character parts: 16 × 65 + 4 bytes, more than a WeCom button key holds."""

    prefix: ClassVar[str] = "wide"
    a: str
    b: str
    c: str
    d: str
    e: str
    f: str
    g: str
    h: str
    i: str
    j: str
    k: str
    l: str  # noqa: E741
    m: str
    n: str
    o: str
    p: str


def test_card_payload_longer_than_the_platform_key_is_refused_when_built() -> None:
    fields = {name: name * 64 for name in _WideAction.model_fields}
    with pytest.raises(ValueError, match=f"exceeds {MAX_KEY_BYTES}"):
        _WideAction(**fields).pack()
    short = _WideAction(**{name: name for name in _WideAction.model_fields}).pack()
    assert unpack_action(short) == _WideAction(**{name: name for name in _WideAction.model_fields})


# ---------------------------------------------------------------- middleware


async def test_unknown_user_is_refused_politely_and_audited(sessionmaker, clock) -> None:
    d = make_dispatcher(sessionmaker, clock)
    webhook = "https://oapi.dingtalk.com/robot/sendBySession?session=abc"
    rows = await send(
        sessionmaker,
        d,
        text_event(
            "stranger",
            "任务",
            platform="dingtalk",
            extras=DingTalkExtras(session_webhook=webhook).dump(),
        ),
    )
    assert len(rows) == 1
    assert "您尚未在联检登记，请联系本单位联络员或联席会议办公室绑定账号" in bodies(rows)
    assert rows[0].destination["kind"] == "chat" and rows[0].destination["address"] == webhook
    [event] = await audit_rows(sessionmaker, "auth.unknown_user")
    assert event.actor == "unknown:dingtalk:stranger"


async def test_unknown_wecom_user_is_answered_by_user_id(sessionmaker, clock) -> None:
    """No reply address: the refusal goes to the stranger's own WeCom id, nowhere else."""
    d = make_dispatcher(sessionmaker, clock)
    [row] = await send(sessionmaker, d, text_event("stranger", "任务", platform="wecom"))
    assert row.destination["kind"] == "user"
    assert (row.destination["platform"], row.destination["address"]) == ("wecom", "stranger")
    assert "您尚未在联检登记" in row.message["body"]
    [event] = await audit_rows(sessionmaker, "auth.unknown_user")
    assert event.actor == "unknown:wecom:stranger" and event.data["answered"] is True


async def test_unknown_simulator_user_is_audited_only(sessionmaker, clock) -> None:
    d = make_dispatcher(sessionmaker, clock)
    assert await send(sessionmaker, d, text_event("nobody", "任务", platform="sim")) == []
    [event] = await audit_rows(sessionmaker, "auth.unknown_user")
    assert event.data["answered"] is False


async def test_wecom_and_dingtalk_ids_resolve_to_the_officer(sessionmaker, clock, people) -> None:
    async with sessionmaker() as s, s.begin():
        officer = await s.get(Officer, people.lead.liaison.id)
        set_account(officer, ChatPlatform.WECOM, "zhangsan")
        set_account(officer, ChatPlatform.DINGTALK, "ding-007")
    d = make_dispatcher(sessionmaker, clock)
    for platform, uid in (("wecom", "zhangsan"), ("dingtalk", "ding-007")):
        rows = await send(sessionmaker, d, text_event(uid, "帮助", platform=platform))
        assert "可用指令" in bodies(rows)
        assert rows[0].destination == {
            "kind": "officer",
            "officer_id": people.lead.liaison.id,
            "department_id": None,
            "platform": None,
            "address": "",
        }


async def test_dingtalk_session_webhook_gets_the_reply(sessionmaker, clock, people) -> None:
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(
        sessionmaker,
        d,
        text_event(
            people.lead.liaison.code,
            "帮助",
            extras=DingTalkExtras(
                session_webhook="https://oapi.dingtalk.com/robot/sendBySession?session=x"
            ).dump(),
        ),
    )
    assert rows[0].destination["kind"] == "chat"
    assert rows[0].destination["address"].endswith("session=x")


async def test_each_dingtalk_conversation_has_its_own_rate_limit_key(
    sessionmaker, clock, people
) -> None:
    pairs = (
        (people.lead.liaison.id, "secret-session-a"),
        (people.lead.inspectors[0].id, "secret-session-b"),
    )
    async with sessionmaker() as s, s.begin():
        for officer_id, session in pairs:
            set_account(await s.get(Officer, officer_id), ChatPlatform.DINGTALK, f"ding-{session}")
    d = make_dispatcher(sessionmaker, clock)
    keys = []
    for _, session in pairs:
        address = f"https://oapi.dingtalk.com/robot/sendBySession?session={session}"
        [row] = await send(
            sessionmaker,
            d,
            text_event(
                f"ding-{session}",
                "帮助",
                platform="dingtalk",
                extras=DingTalkExtras(session_webhook=address).dump(),
            ),
        )
        assert row.destination["address"] == address
        assert row.dest_key == "chat:dingtalk:" + hashlib.sha256(address.encode()).hexdigest()[:16]
        assert session not in row.dest_key
        keys.append(row.dest_key)
    assert keys[0] != keys[1]  # a throttled conversation does not hold back the other


async def test_unknown_and_malformed_commands_get_specific_hints(
    sessionmaker, clock, people
) -> None:
    d = make_dispatcher(sessionmaker, clock)
    who = people.lead.liaison.code
    assert "未识别的指令“吃饭了吗”" in bodies(
        await send(sessionmaker, d, text_event(who, "吃饭了吗"))
    )
    usage = bodies(await send(sessionmaker, d, text_event(who, "接受")))
    assert "用法：接受 编号 [事项代码…]" in usage and "例如：" in usage
    assert "未找到任务 LJ-2026-999，请核对任务编号（形如 LJ-2026-001）" in bodies(
        await send(sessionmaker, d, text_event(who, "接受 LJ-2026-999"))
    )
    # a typo is answered with what the code should look like: the way on
    assert "找不到案件 LJ-2026-01-003，请核对案件号（形如 LJ-2026-001-003）" in bodies(
        await send(sessionmaker, d, text_event(who, "案件 LJ-2026-01-003"))
    )


@pytest.mark.parametrize(
    ("typed", "meant"), [("我的 检查", "我的检查"), ("确认 抽取 LJ-2026-001 1234", "确认抽取")]
)
async def test_a_command_word_split_by_a_space_is_suggested(
    sessionmaker, clock, people, typed, meant
) -> None:
    """`我的 检查` was answered 未识别的指令“我的” with no word of 我的检查."""
    d = make_dispatcher(sessionmaker, clock)
    reply = bodies(await send(sessionmaker, d, text_event(people.lead.liaison.code, typed)))
    assert f"未识别的指令“{typed.split()[0]}”" in reply and f"您是否要发送“{meant}”" in reply


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("提叫 LJ-2026-001-003 未发现问题 今天", "提交"),  # the input method's homophone
        ("提叫LJ-2026-001-003", "提交"),
        ("我的检察", "我的检查"),
        ("汇总总", "汇总"),  # a character typed twice
        ("年度考", "年度考核"),  # one left out
    ],
)
async def test_a_command_word_one_character_off_is_suggested(
    sessionmaker, clock, people, typed, meant
) -> None:
    """`提叫` (提交 mistyped) was answered 未识别的指令 with no word of 提交, while `汇 总` got
    “您是否要发送“汇总””: a word one character from one command word alone is suggested too."""
    d = make_dispatcher(sessionmaker, clock)
    reply = bodies(await send(sessionmaker, d, text_event(people.lead.liaison.code, typed)))
    assert f"您是否要发送“{meant}”" in reply, reply
    assert "指令词中间不加空格" not in reply


@pytest.mark.parametrize(
    "typed", ["你好", "谢谢", "好的", "收到", "在吗", "辛苦了", "明白", "吃饭了吗", "通知", "tx"]
)
async def test_chat_that_is_no_command_gets_no_suggestion(
    sessionmaker, clock, people, typed
) -> None:
    """Everyday words are not one character from a command word, or are from two (通知: 通知书
    and 通过): no guess is offered."""
    d = make_dispatcher(sessionmaker, clock)
    reply = bodies(await send(sessionmaker, d, text_event(people.lead.liaison.code, typed)))
    assert "未识别的指令" in reply and "您是否要发送" not in reply, reply


async def test_help_lists_the_commands_the_roles_may_use_and_all_on_request(
    sessionmaker, clock, people
) -> None:
    """帮助 from an inspector listed all 40 commands, the admin's included: it lists those the
    officer's roles may use (README "Access"), and says how to see the rest (帮助 全部)."""
    d = make_dispatcher(sessionmaker, clock)
    inspector = people.lead.inspectors[0]
    text = bodies(await send(sessionmaker, d, text_event(inspector.code, "帮助")))
    for c in COMMANDS:
        assert (c.usage in text) == (not c.hidden and c.open_to(inspector)), c.name
    assert "**提交 " in text and "**离岗 " not in text and "**年度考核 " not in text
    assert "发送“帮助 全部”查看全部指令" in text
    everything = bodies(await send(sessionmaker, d, text_event(inspector.code, "帮助 全部")))
    for c in COMMANDS:
        assert (c.usage in everything) != c.hidden
        assert c.hidden or c.example in everything
    assert "帮助 全部”查看" not in everything
    one = bodies(await send(sessionmaker, d, text_event(people.lead.inspectors[0].code, "帮助 jj")))
    assert "拒绝 编号 理由" in one and "接受 编号" not in one
    other = bodies(
        await send(sessionmaker, d, text_event(people.lead.inspectors[0].code, "帮助 审批"))
    )
    submit = next(c.usage for c in COMMANDS if c.name == "提交")
    assert other.startswith("没有“审批”这个指令") and submit in other


def test_readme_command_table_lists_every_command_with_who_may_use_it() -> None:
    """Issue 8: the README's chat command table names every command 帮助 lists, with who may
    use it, and names no command the bot does not know."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    table = readme.split("## Chat commands (officers)", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| `")]
    named = {}
    for command, who, *_ in rows:
        for usage in re.findall(r"`([^`]+)`", command):
            named[usage.split()[0]] = who.strip()
    visible = {c.name for c in COMMANDS if not c.hidden}
    assert visible <= set(named), visible - set(named)
    known = {w for c in COMMANDS for w in c.words()}
    assert set(named) <= known, set(named) - known
    assert all(named[name] for name in visible)


async def test_unexpected_errors_propagate_for_the_inbox_worker(
    sessionmaker, clock, people, monkeypatch
) -> None:
    async def broken(ctx, args):  # a bug in a handler, not a user error
        raise RuntimeError("boom")

    command = next(c for c in COMMANDS if c.name == "我的检查")
    monkeypatch.setattr("handlers.cases.progress.cases_for_officer", broken)
    d = make_dispatcher(sessionmaker, clock)
    with pytest.raises(RuntimeError, match="boom"):
        await send(sessionmaker, d, text_event(people.lead.inspectors[0].code, command.name))
    async with sessionmaker() as s:
        assert await s.scalar(select(OutboxMessage.id)) is None  # no reply, no stack trace


async def test_outer_rollback_discards_everything_the_dispatcher_wrote(
    sessionmaker, clock, people
) -> None:
    """The SAVEPOINT must nest inside the caller's transaction (SQLite's driver would otherwise
    commit at RELEASE): the inbox worker's rollback has to undo the handler's draw and replies."""
    d = make_dispatcher(sessionmaker, clock)
    async with sessionmaker() as s:
        await s.begin()
        await d.handle(s, text_event(people.lead.liaison.code, "快抽 2 名 执法人员"))
        assert await s.scalar(select(Draw.code)) == "KC-2026-0001"
        await s.rollback()
    async with sessionmaker() as s:
        assert await s.scalar(select(Draw.id)) is None
        assert await s.scalar(select(OutboxMessage.id)) is None
        assert await s.scalar(select(AuditEvent.id)) is None


async def test_one_officers_events_are_serialised(sessionmaker, clock, people) -> None:
    """A second event of the same officer waits for the first transaction (aiogram #1317)."""
    d = make_dispatcher(sessionmaker, clock)
    who = people.lead.liaison.code
    async with sessionmaker() as first:
        await first.begin()
        await d.handle(first, text_event(who, "快抽 1 户 对象"))

        async def second() -> None:
            async with sessionmaker() as s, s.begin():
                await d.handle(s, text_event(who, "快抽 1 户 对象"))

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await first.commit()
        await asyncio.wait_for(waiting, 10)
    async with sessionmaker() as s:
        assert list(await s.scalars(select(Draw.code).order_by(Draw.id))) == [
            "KC-2026-0001",
            "KC-2026-0002",
        ]


async def test_expired_step_is_ignored_and_the_message_handled_as_a_command(
    sessionmaker, clock, people
) -> None:
    async with sessionmaker() as s, s.begin():
        s.add(
            Conversation(
                officer_id=people.lead.liaison.id,
                step="decline_reason",
                data={"invitation_id": 999, "task_code": "LJ-2026-009"},
                expires_at=clock.now() - dt.timedelta(minutes=1),
            )
        )
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(people.lead.liaison.code, "帮助"))
    assert "可用指令" in bodies(rows)
    async with sessionmaker() as s:
        assert await s.scalar(select(Conversation.id)) is None


async def test_commands_run_without_a_savepoint_write_nothing_but_their_replies(
    sessionmaker, clock
) -> None:
    """`Command.reads_only` spares the SAVEPOINT: such a command, answered or refused, writes
    nothing the savepoint would have had to undo — only the officer lock, its replies and the
    audit of a refusal."""
    world, code = await ready_world(sessionmaker, clock, inspectors=2, n_targets=10)
    async with sessionmaker() as s, s.begin():
        outsider = await f.dept(s, inspectors=1)
    writes: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        head = " ".join(statement.split()[:3]).upper()
        if head.startswith(("INSERT", "UPDATE", "DELETE", "REPLACE")):
            writes.append(head)

    d = make_dispatcher(sessionmaker, clock)
    sync_engine = sessionmaker.kw["bind"].sync_engine
    event.listen(sync_engine, "before_cursor_execute", seen)
    try:
        for command in (c for c in COMMANDS if c.reads_only):
            for args in ("", code, "LJ-2026-999", "x y z"):
                for who in (
                    world.lead.liaison,
                    world.lead.leader,
                    world.partners[0].liaison,
                    world.partners[0].inspectors[0],
                    outsider.leader,
                ):
                    await send(sessionmaker, d, text_event(who.code, f"{command.name} {args}"))
    finally:
        event.remove(sync_engine, "before_cursor_execute", seen)
    allowed = {
        "UPDATE OFFICER SET",  # the per-officer lock on SQLite
        "INSERT INTO OUTBOX",
        "INSERT INTO AUDIT_EVENT",
        "UPDATE AUDIT_HEAD SET",
        "INSERT INTO AUDIT_HEAD",
    }
    assert writes and set(writes) <= allowed

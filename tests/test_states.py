"""Declared states: the README tables are the code's tables, and unlisted moves are refused."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import StatementError

from core import inbox, objections, outbox
from core.cases import get_case
from core.consultation import answers, opening
from core.draws import quickdraw
from core.errors import InvalidTransition, ValidationFailed
from core.groups import matching
from core.history import EVENT_LABELS
from core.inspection import mark_notified, record_inspection_date
from core.jointtask import task_invitations
from core.messages import Destination, Event, OutMessage
from core.models import Case, OutboxMessage
from core.publication import correct_result, publish_case
from core.result_entry import submit_result
from core.review import review_result
from core.states import (
    CASE,
    DRAW,
    MACHINES,
    OUTBOX,
    RESULT,
    CaseState,
    DrawState,
    InboxState,
    InvitationState,
    Machine,
    OutboxState,
    ResultState,
    TaskState,
)
from tests import factories as f
from tests.case_factories import ResultFields, acting, at_day, build_world, enter_other_parts

README = Path(__file__).resolve().parent.parent / "README.md"
CLEAN: ResultFields = {"codes": ["1"], "methods": ["实地检查"], "followups": ["无需后续处置"]}


# ---------------------------------------------------------------- README


def _readme_tables() -> dict[str, tuple[list[tuple[str, str]], list[tuple[str, str, str]]]]:
    """Per `### entity` heading of the README's States section: its states with their labels
    and its moves (from, to, who); "(new)" stands for a row being created."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## States\n", 1)[1].split("\n## ", 1)[0]
    tables = {}
    for block in section.split("\n### ")[1:]:
        heading, body = block.split("\n", 1)
        entity = heading.split(" (", 1)[0]
        states_text = body.split("States: ", 1)[1].split("\n\n", 1)[0]
        states = re.findall(r"`(\w+)` (\S+)", states_text)
        moves = []
        for line in body.splitlines():
            cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
            if line.startswith("|") and len(cells) == 3 and cells[0] not in ("from", "---"):
                moves.append((cells[0], cells[1], cells[2]))
        tables[entity] = (states, moves)
    return tables


def _code_table(machine: Machine[Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    states = [(str(s), machine.label(s)) for s in machine.states]
    moves = [("(new)" if m.src is None else str(m.src), str(m.dst), m.who) for m in machine.moves]
    return states, moves


def test_readme_state_tables_match_the_code() -> None:
    readme = _readme_tables()
    assert list(readme) == [m.entity for m in MACHINES]
    for machine in MACHINES:
        assert readme[machine.entity] == _code_table(machine), machine.entity


def test_every_state_has_a_label_and_is_reachable() -> None:
    for machine in MACHINES:
        enum: type[StrEnum] = type(machine.states[0])
        assert machine.states == list(enum), machine.entity
        reached = {m.dst for m in machine.moves}
        assert reached == set(enum), machine.entity


# ---------------------------------------------------------------- the machines themselves


@dataclass
class Row:
    state: str


def test_an_unlisted_move_is_refused_in_chinese_and_changes_nothing() -> None:
    for machine in MACHINES:
        for src, dst in itertools.product(machine.states, repeat=2):
            if machine.allows(src, dst):
                continue
            row = Row(src)
            with pytest.raises(InvalidTransition) as err:
                machine.move(row, dst)
            assert str(err.value) == (
                f"{machine.noun}当前状态为“{machine.label(src)}”，不能改为“{machine.label(dst)}”"
            )
            assert row.state == src
            with pytest.raises(InvalidTransition):
                machine.edge(src, dst)


def test_a_row_is_created_only_in_a_listed_state() -> None:
    assert CASE.start(CaseState.ASSIGNED) == CaseState.ASSIGNED
    with pytest.raises(InvalidTransition, match="案件不能以“已公示”状态新建"):
        CASE.start(CaseState.PUBLISHED)
    assert RESULT.start(ResultState.PUBLISHED) == ResultState.PUBLISHED  # a correction


def test_a_listed_move_sets_the_enum() -> None:
    row = Row("dead")
    OUTBOX.move(row, OutboxState.PENDING)
    assert row.state is OutboxState.PENDING


# ---------------------------------------------------------------- on the database


async def test_a_state_column_stores_the_plain_value_and_refuses_unknown_ones(ctx, session):
    row = await outbox.enqueue(
        session, Destination.office(), OutMessage.md("t", "x"), now=ctx.clock.now()
    )
    assert row is not None
    row_id = row.id
    await session.commit()
    loaded = await session.get(OutboxMessage, row_id, populate_existing=True)
    assert loaded is not None and loaded.state is OutboxState.PENDING
    loaded.state = "sending"  # what a typo would do
    with pytest.raises(StatementError, match="'sending' is not a valid OutboxState"):
        await session.flush()
    await session.rollback()


async def test_case_moves_outside_the_table_are_refused(ctx, session):
    """A case is notified only before inspection, reviewed only when submitted, published only
    when approved (004 第十六条、第十九条)."""
    w = await build_world(session)
    member = acting(ctx, w.a1)
    at_day(ctx, w.task.window_start + dt.timedelta(days=3))
    await record_inspection_date(member, w.case.code, w.task.window_start)
    with pytest.raises(
        InvalidTransition, match=f"案件 {w.case.code} 当前状态为“已检查”，不能登记已发放通知书"
    ):
        await mark_notified(member, await get_case(member, w.case.code, for_update=True), {})
    with pytest.raises(InvalidTransition, match="当前状态为“已检查”，不能审核"):
        await review_result(acting(ctx, w.lead_liaison), w.case.code, True)
    with pytest.raises(InvalidTransition, match="当前状态为“已检查”，不能公示"):
        await publish_case(acting(ctx, w.lead_liaison), w.case.code)
    case = await session.get(Case, w.case.id)
    assert case is not None and case.state is CaseState.INSPECTED


async def test_result_and_objection_moves_outside_the_table_are_refused(ctx, session):
    """Only a published result is corrected or objected to; an objection is answered only after
    its re-check (004 第二十条)."""
    w = await build_world(session)
    at_day(ctx, w.task.window_start + dt.timedelta(days=3))
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(acting(ctx, w.a1), w.case.code, **CLEAN, inspected_on=w.task.window_start)
    lead = acting(ctx, w.lead_liaison)
    with pytest.raises(InvalidTransition, match="当前状态为“待审核”，不能更正"):
        await correct_result(lead, w.case.code, reason="笔误", **CLEAN)
    with pytest.raises(InvalidTransition, match="当前状态为“待审核”，不能受理异议"):
        await objections.file_objection(lead, w.case.code, "某某公司", "异议", ctx.clock.today())
    await review_result(lead, w.case.code, True)
    await review_result(acting(ctx, w.other_liaison), w.case.code, True)  # publishes
    with pytest.raises(InvalidTransition, match="当前状态为“已公示”，不能公示"):
        await publish_case(lead, w.case.code)  # once is enough (rules.auto_publish)
    objection = await objections.file_objection(
        lead, w.case.code, "某某公司", "异议", ctx.clock.today()
    )
    with pytest.raises(InvalidTransition, match="尚未复查，不能答复"):
        await objections.reply_objection(lead, objection.id)


async def test_outbox_and_inbox_moves_outside_the_table_are_refused(ctx, session):
    now = ctx.clock.now()
    row = await outbox.enqueue(session, Destination.office(), OutMessage.md("t", "x"), now=now)
    assert row is not None
    row_id = row.id
    with pytest.raises(ValidationFailed, match="只有死信可以重新发送"):
        await outbox.retry(session, row_id, now)
    await session.commit()
    session.expire_all()  # as the sender does: claims in a session of its own
    (claimed,) = await outbox.claim_due(session, 10, now, dt.timedelta(minutes=1))
    assert claimed.claimed_until is not None
    assert await outbox.mark_sent(session, row_id, claimed.claimed_until, now=now, channel="sim")
    assert not await outbox.mark_sent(
        session, row_id, claimed.claimed_until, now=now, channel="sim"
    )  # sent is final

    event = Event(platform="sim", event_id="e1", kind="text", user_id="u", text="帮助")
    assert await inbox.store(session, event, now=now)
    (pending,) = await inbox.claim_pending(session, 10, now, dt.timedelta(minutes=1))
    assert await inbox.mark_done(session, pending.id, now)
    assert not await inbox.mark_done(session, pending.id, now)  # done is final
    state = await inbox.mark_failed(
        session, pending.id, "boom", now=now, retry_at=now, max_attempts=1
    )
    assert state == InboxState.DONE


async def test_task_invitation_and_draw_moves_outside_the_table_are_refused(ctx, session):
    """Consultation happens once, from a draft; an answered invitation is not answered again;
    a locked draw never changes (000 §七, 001 第十四条)."""
    w = await f.world(session, partners=1)
    lead = f.as_actor(ctx, w.lead.liaison)
    task = await f.ready_task(ctx, w)
    assert task.state is TaskState.READY
    with pytest.raises(InvalidTransition, match="任务当前状态为“待抽取”，只有草稿任务可以发起征询"):
        await opening.open_consultation(lead, task, [w.partners[0].dep.id])
    (invitation,) = await task_invitations(ctx, task)
    assert invitation.state is InvitationState.ACCEPTED
    with pytest.raises(InvalidTransition, match="该邀请已答复（已接受），不能重复答复"):
        await answers.decline_invitation(
            f.as_actor(ctx, w.partners[0].liaison), invitation.id, "本部门本季度执法力量已全部投入"
        )
    with pytest.raises(InvalidTransition, match="检查对象尚未抽取锁定"):
        await matching.match_inspectors(lead, task.code)

    quick = await quickdraw.draw_targets(lead, 3)  # frozen until a colleague's number comes
    drawn_state = quick.state  # read now: the confirmation below changes it in place
    assert drawn_state is DrawState.FROZEN
    colleague = f.as_actor(ctx, w.lead.leader)
    await quickdraw.confirm_quick_draw(colleague, quick.code, "123")
    assert quick.state is DrawState.LOCKED
    with pytest.raises(InvalidTransition, match="已锁定，结果不能再变"):
        await quickdraw.confirm_quick_draw(colleague, quick.code, "456")
    with pytest.raises(InvalidTransition, match="抽取当前状态为“已锁定”，不能改为“已作废”"):
        DRAW.move(quick, DrawState.SUPERSEDED)


def test_the_history_names_notification_as_the_case_state_does() -> None:
    """One word for one step: the history said 已告知 beside the state 已通知."""
    assert EVENT_LABELS["case.notified"] == CASE.labels[CaseState.NOTIFIED] == "已通知"

"""Ratios are checked when the lead creates the task, with the numbers in the refusal:
general items have a cap (002 二(二)); higher risk is never sampled less than lower risk unless
the 工作方案 says why (004 第八条, 001 第十四条)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from core.changes import Ctx
from core.consultation import answers, opening
from core.draws import algorithm, targets
from core.draws.ratios import check_risk_order
from core.errors import ValidationFailed
from core.models import Draw, Invitation, JointTask
from tests import factories as f
from tests.case_factories import at_time

SOURCE = "2026年3月3日福彩3D开奖号码"  # the clock starts at noon on 2 March


def _rule(*strata: tuple[str, list[str], list[str], str], reason: str = "") -> dict[str, Any]:
    return {
        "strata": [
            {"name": n, "risk_levels": levels, "flags": flags, "ratio": ratio}
            for n, levels, flags, ratio in strata
        ],
        "ratio_reason": reason,
    }


async def _create(
    ctx: Ctx, w: f.World, rule: dict[str, Any], *, key: bool = False, cap: str = ""
) -> JointTask:
    item = await f.item(ctx.session, w.lead.dep, key=key)
    item.ratio_cap = cap
    w.lead.items = [item]
    return await f.draft_task(ctx, w, rule=rule)


async def test_a_general_items_ratio_above_the_rules_cap_is_refused_with_the_numbers(
    ctx: Ctx,
) -> None:
    """002 二(二): 一般检查事项…抽查比例应…设置上限 (rules.general_item_ratio_cap = 10 %)."""
    w = await f.world(ctx.session, partners=0, n_targets=0)
    with pytest.raises(ValidationFailed) as refused:
        await _create(ctx, w, _rule(("重点关注", ["D"], [], "0.15")))
    assert "上限为 10%" in refused.value.message and "15%" in refused.value.message


async def test_an_items_own_cap_wins_and_key_items_have_none(ctx: Ctx) -> None:
    """002 二(二): 重点检查事项…抽查比例不设上限; an item list's own cap replaces the default."""
    w = await f.world(ctx.session, partners=0, n_targets=0)
    assert await _create(ctx, w, _rule(("重点关注", ["D"], [], "0.15")), cap="0.20")
    with pytest.raises(ValidationFailed, match="上限为 5%"):
        await _create(ctx, w, _rule(("重点关注", ["D"], [], "0.08")), cap="0.05")
    assert await _create(ctx, w, _rule(("重点关注", ["D"], [], "0.60")), key=True)


async def test_higher_risk_sampled_less_than_lower_risk_is_refused_unless_the_plan_says_why(
    ctx: Ctx,
) -> None:
    """004 第八条 (高风险加大抽查比例), 001 第十四条 (低风险合理降低抽查比例)."""
    w = await f.world(ctx.session, partners=0, n_targets=0)
    inverted = _rule(("高风险", ["D"], [], "0.02"), ("低风险", ["A"], [], "0.05"))
    with pytest.raises(ValidationFailed) as refused:
        await _create(ctx, w, inverted)
    assert "“高风险”抽查比例 2% 低于" in refused.value.message and "5%" in refused.value.message
    reasoned = {**inverted, "ratio_reason": "本次专项针对低风险主体的登记事项"}
    assert await _create(ctx, w, reasoned)


def test_flags_rank_above_every_risk_class_and_the_catch_all_has_no_rank() -> None:
    """004 第八条: 经营异常名录、重点关注对象 rank highest; a stratum of 'everyone left' and count
    strata are not compared."""
    with pytest.raises(ValidationFailed, match="重点关注"):
        check_risk_order(
            algorithm.parse_rule(
                _rule(("重点关注", [], ["经营异常名录"], "0.03"), ("D类", ["D"], [], "0.05"))
            )
        )
    check_risk_order(
        algorithm.parse_rule(
            {
                "strata": [
                    {"name": "高风险", "risk_levels": ["D"], "ratio": "0.05"},
                    {"name": "其余", "ratio": "0.08"},
                    {"name": "抽样", "risk_levels": ["A"], "count": 30},
                ]
            }
        )
    )


# ---------------------------------------------------------------- 002 二(二): counts, participants


def _counted(count: int, **more: Any) -> dict[str, Any]:
    return {"strata": [{"name": "全部", "count": count, **more}]}


async def test_002_2_2_a_count_above_a_general_items_cap_is_refused_once_the_pool_is_known(
    ctx: Ctx,
) -> None:
    """002 二(二): a general item's cap bounds the share drawn, written as a ratio or as a count:
    `count = 45` over a pool of 49 is 91.8 %, not within a 3 % cap (a tester's task file was
    created while `ratio = "0.92"` was refused). The cap in households is rounded up to a whole
    household (3 % of 49 → 2), so a count of 2 stays within it."""
    w = await f.world(ctx.session, partners=0, n_targets=49)
    with pytest.raises(ValidationFailed) as refused:
        await _create(ctx, w, _counted(45), cap="0.03")
    said = refused.value.message
    assert "45 户" in said and "49 户的 91.8%" in said and "上限 3%" in said, said
    assert "最多抽 2 户" in said and "002 二(二)" in said, said
    assert await _create(ctx, w, _counted(2), cap="0.03")


async def test_002_2_2_a_minimum_above_a_general_items_cap_is_refused(ctx: Ctx) -> None:
    """002 二(二): `min` raises a stratum's count like `count` does; 1 % at least 10 of 49 is
    20.4 %. A minimum of one household stays within any cap."""
    w = await f.world(ctx.session, partners=0, n_targets=49)
    ratio_min = {"strata": [{"name": "全部", "ratio": "0.01", "min": 10}]}
    with pytest.raises(ValidationFailed, match=r"10 户.*49 户的 20\.4%.*上限 3%"):
        await _create(ctx, w, ratio_min, cap="0.03")
    one = {"strata": [{"name": "全部", "ratio": "0.03", "rounding": "up", "min": 1}]}
    assert await _create(ctx, w, one, cap="0.03")


async def test_002_2_2_a_count_is_checked_at_freeze_when_the_pool_was_unknown_at_creation(
    ctx: Ctx,
) -> None:
    """002 二(二): created before the target library was loaded, a count cannot be compared
    with the cap; the freeze, which fixes the pool, refuses what would exceed it."""
    w = await f.world(ctx.session, partners=0, n_targets=0)
    item = await f.item(ctx.session, w.lead.dep)
    item.ratio_cap = "0.03"
    w.lead.items = [item]
    task = await f.ready_task(ctx, w, rule=_counted(45))
    await f.targets(ctx.session, 49)
    with pytest.raises(ValidationFailed) as refused:
        await targets.freeze_pool(f.as_actor(ctx, w.lead.liaison), task.code, SOURCE)
    said = refused.value.message
    assert "45 户" in said and "49 户的 91.8%" in said and "上限 3%" in said, said
    assert await ctx.session.scalar(select(Draw.id)) is None


async def test_002_2_2_a_participant_cannot_accept_with_a_general_item_capped_below_the_ratio(
    ctx: Ctx,
) -> None:
    """002 二(二): the task draws 10 % for every department; a participant's general item capped
    at 5 % cannot join it (a tester's `接受 LJ-2027-003 WJ-01` joined and `抽取` froze 10 %).
    The refusal names the task's ratio and the item's cap; a key item joins."""
    w = await f.world(ctx.session, partners=1, n_targets=10)
    w.lead.items = [await f.item(ctx.session, w.lead.dep, key=True)]
    p = w.partners[0]
    capped = p.items[0]
    capped.ratio_cap = "0.05"
    key = await f.item(ctx.session, p.dep, key=True)
    task = await f.draft_task(ctx, w, rule=_rule(("全部", [], [], "0.10")))
    [inv] = await opening.open_consultation(f.as_actor(ctx, w.lead.liaison), task, [p.dep.id])
    with pytest.raises(ValidationFailed) as refused:
        await answers.accept_invitation(f.as_actor(ctx, p.liaison), inv.id, [capped.id])
    said = refused.value.message
    assert "10%" in said and "上限为 5%" in said and capped.code in said, said
    assert "002 二(二)" in said and "不能以该事项接受" in said, said
    assert inv.state == "pending"
    await answers.accept_invitation(f.as_actor(ctx, p.liaison), inv.id, [key.id])
    assert inv.state == "accepted"


async def test_002_2_2_a_participant_cannot_accept_with_a_general_item_capped_below_the_count(
    ctx: Ctx,
) -> None:
    """002 二(二): accepting puts the department's items into the task, and a count the pool now
    shows above a general item's cap (45 of 49 against 3 %) refuses the answer as at creation."""
    w = await f.world(ctx.session, partners=1, n_targets=49)
    w.lead.items = [await f.item(ctx.session, w.lead.dep, key=True)]
    p = w.partners[0]
    p.items[0].ratio_cap = "0.03"
    task = await f.draft_task(ctx, w, rule=_counted(45))
    [inv] = await opening.open_consultation(f.as_actor(ctx, w.lead.liaison), task, [p.dep.id])
    with pytest.raises(ValidationFailed) as refused:
        await answers.accept_invitation(f.as_actor(ctx, p.liaison), inv.id, [p.items[0].id])
    said = refused.value.message
    assert "45 户" in said and "上限 3%" in said and "不能以该事项接受" in said, said


async def test_002_2_2_the_freeze_checks_every_departments_items(ctx: Ctx) -> None:
    """002 二(二): no path draws above a cap — a participant's general item in the task (one
    that joined before acceptances were checked) stops the freeze, naming the item."""
    w = await f.world(ctx.session, partners=1, n_targets=20)
    w.lead.items = [await f.item(ctx.session, w.lead.dep, key=True)]
    task = await f.ready_task(ctx, w, rule=_rule(("全部", [], [], "0.10")))
    p = w.partners[0]
    inv = await ctx.session.scalar(select(Invitation).where(Invitation.task_id == task.id))
    assert inv is not None and inv.state == "accepted"
    p.items[0].ratio_cap = "0.05"  # as it stood when the department joined, unchecked
    with pytest.raises(ValidationFailed) as refused:
        await targets.freeze_pool(f.as_actor(ctx, w.lead.liaison), task.code, SOURCE)
    said = refused.value.message
    assert "10%" in said and "上限为 5%" in said and p.items[0].code in said, said
    assert await ctx.session.scalar(select(Draw.id)) is None


async def test_002_2_2_a_draw_frozen_before_the_checks_is_not_confirmed_above_a_cap(
    ctx: Ctx,
) -> None:
    """002 二(二): the draw never exceeds a cap — a draw frozen before the freeze checked the
    caps (here: a participant's item whose cap stood below the ratio) is not locked either."""
    w = await f.world(ctx.session, partners=1, n_targets=20)
    w.lead.items = [await f.item(ctx.session, w.lead.dep, key=True)]
    task = await f.ready_task(ctx, w, rule=_rule(("全部", [], [], "0.10")))
    lead = f.as_actor(ctx, w.lead.liaison)
    await targets.freeze_pool(lead, task.code, SOURCE)
    w.partners[0].items[0].ratio_cap = "0.05"
    at_time(ctx, dt.datetime(2026, 3, 4, 12, tzinfo=dt.UTC))
    with pytest.raises(ValidationFailed, match="上限为 5%"):
        await targets.confirm_draw(lead, task.code, "417")
    d = await ctx.session.scalar(select(Draw))
    assert d is not None and d.state == "frozen" and not d.selection

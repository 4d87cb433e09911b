"""Ratios are checked when the lead creates the task, with the numbers in the refusal:
general items have a cap (002 二(二)); higher risk is never sampled less than lower risk unless
the 工作方案 says why (004 第八条, 001 第十四条)."""

from __future__ import annotations

from typing import Any

import pytest

from core.changes import Ctx
from core.draws import algorithm
from core.draws.ratios import check_risk_order
from core.errors import ValidationFailed
from core.models import JointTask
from tests import factories as f


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

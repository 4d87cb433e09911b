"""Ratio rules checked when a task is created, with the numbers in the refusal:

- a general item's ratio has a cap (002 二(二): 一般检查事项…抽查比例应…设置上限): its own cap
  from the item list, else `rules.general_item_ratio_cap`; key items have none;
- a stratum of higher risk is not sampled less than a lower-risk one (004 第八条: 对…经营异常名录、
  重点关注…增加抽查频次，加大抽查比例; 001 第十四条: 对低风险…合理降低抽查比例), unless the
  工作方案 states why (`ratio_reason` in the rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from core.draws.algorithm import SamplingRule, StratumRule
from core.errors import ValidationFailed
from core.models import Item

RISK_RANK = {"": 0, "A": 1, "B": 2, "C": 3, "D": 4}
FLAGGED_RANK = 5  # 经营异常名录 / 重点关注 / 投诉举报 flags rank above every risk class


def _percent(ratio: Decimal) -> str:
    return f"{(ratio * 100).normalize():f}%"


def _cap(item: Item, default_cap: str) -> Decimal:
    try:
        return Decimal(item.ratio_cap or default_cap)
    except InvalidOperation:
        raise ValidationFailed(
            f"事项“{item.name}”的抽查比例上限“{item.ratio_cap}”不是有效的数字"
        ) from None


def check_caps(rule: SamplingRule, items: Sequence[Item], default_cap: str) -> None:
    for item in (i for i in items if i.category != "key"):
        cap = _cap(item, default_cap)
        for stratum in rule.strata:
            if stratum.ratio is not None and stratum.ratio > cap:
                raise ValidationFailed(
                    f"一般检查事项“{item.name}”的抽查比例上限为 "
                    f"{_percent(cap)}，分层“{stratum.name}”"
                    f"的比例为 {_percent(stratum.ratio)}，超过上限（002 二(二)）。请调低比例，"
                    "或改用重点检查事项"
                )


def _rank(stratum: StratumRule) -> int | None:
    """How risky a stratum's members are; None for the catch-all stratum (no membership)."""
    if not stratum.risk_levels and not stratum.flags:
        return None
    ranks = [RISK_RANK.get(level, 0) for level in stratum.risk_levels]
    return max([*ranks, FLAGGED_RANK] if stratum.flags else ranks)


def check_risk_order(rule: SamplingRule) -> None:
    if rule.ratio_reason.strip():
        return
    ranked = [(r, s) for s in rule.strata if s.ratio is not None and (r := _rank(s)) is not None]
    for high_rank, high in ranked:
        for low_rank, low in ranked:
            assert high.ratio is not None and low.ratio is not None  # filtered above
            if high_rank > low_rank and high.ratio < low.ratio:
                raise ValidationFailed(
                    f"风险较高的分层“{high.name}”抽查比例 {_percent(high.ratio)} 低于风险较低的分层"
                    f"“{low.name}” {_percent(low.ratio)}（"
                    "004 第八条、001 第十四条：高风险加大比例，"
                    "低风险降低比例）。请调整比例，或在工作方案的抽取规则中用 ratio_reason 写明理由"
                )


def check_ratios(rule: SamplingRule, items: Sequence[Item], default_cap: str) -> None:
    check_caps(rule, items, default_cap)
    check_risk_order(rule)

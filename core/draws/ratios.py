"""Ratio rules, with the numbers in the refusal:

- a general item's ratio has a cap (002 二(二): 一般检查事项…抽查比例应…设置上限): its own cap
  from the item list, else `rules.general_item_ratio_cap`; key items have none. It bounds the
  share a stratum draws however the rule writes it: a ratio is compared at once; a count (or a
  `min` above the ratio) only once the stratum's size is known — at creation and acceptance from
  the library as it stands, finally at freeze and confirmation from the frozen pool. In
  households the cap allows cap × size rounded up to a whole household, so a ratio at the cap
  drawn 向上取整, or a minimum of one household, stays within it. Every department's items are
  checked: the lead's at creation, a participant's when it accepts, all of them at the draw;
- a stratum of higher risk is not sampled less than a lower-risk one (004 第八条: 对…经营异常名录、
  重点关注…增加抽查频次，加大抽查比例; 001 第十四条: 对低风险…合理降低抽查比例), unless the
  工作方案 states why (`ratio_reason` in the rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation

from core.draws.algorithm import SamplingRule, StratumRule, quota
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


CREATE_ADVICE = "请调低比例或户数，或改用重点检查事项"


def _item_label(item: Item) -> str:
    return f"{item.code} {item.name}" if item.code else item.name


def cap_households(cap: Decimal, size: int) -> int:
    """The most households a cap allows of a stratum of `size`: rounded up to a whole one."""
    return int((cap * size).to_integral_value(rounding=ROUND_CEILING))


def share_text(k: int, size: int) -> str:
    """45 of 49 → "91.8%"."""
    share = (Decimal(k) * 100 / size).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{share.normalize():f}%"


def needs_sizes(rule: SamplingRule, items: Sequence[Item]) -> bool:
    """Whether the caps need the strata's sizes: a general item and a stratum whose count is not
    its ratio's (a count, or a minimum above one household)."""
    return any(i.category != "key" for i in items) and any(
        s.count is not None or s.min > 1 for s in rule.strata
    )


def cap_problem(item: Item, amount: Decimal | int, size: int, default_cap: str) -> str | None:
    """What drawing `amount` — a ratio, or a number of households out of a stratum of `size` —
    breaks of the item's cap (002 二(二)), as the clause following what draws it (分层“全部”的…,
    抽查…); None when within it: a key item has no cap, a count over an unknown size (0) is
    checked once the size is known. Its own cap from the item list, else `default_cap`."""
    if item.category == "key":
        return None
    cap = _cap(item, default_cap)
    if isinstance(amount, Decimal):
        if amount <= cap:
            return None
        return (
            f"比例为 {_percent(amount)}，超过一般检查事项“{_item_label(item)}”的抽查比例上限"
            f"（上限为 {_percent(cap)}；002 二(二)）"
        )
    if not size or amount <= (most := cap_households(cap, size)):
        return None
    return (
        f"占抽取范围 {size} 户的 {share_text(amount, size)}，超过一般检查事项"
        f"“{_item_label(item)}”的抽查比例上限 {_percent(cap)}（{size} 户最多抽 {most} 户；"
        "002 二(二)）"
    )


def check_cap_ratios(
    rule: SamplingRule, items: Sequence[Item], default_cap: str, *, advice: str = CREATE_ADVICE
) -> None:
    """Refuse a stratum whose ratio is above a general item's cap: known without the pool."""
    for item in items:
        for stratum in rule.strata:
            if stratum.ratio is not None and (
                problem := cap_problem(item, stratum.ratio, 0, default_cap)
            ):
                raise ValidationFailed(f"分层“{stratum.name}”的{problem}。{advice}")


def check_cap_counts(
    rule: SamplingRule,
    items: Sequence[Item],
    default_cap: str,
    sizes: Mapping[str, int],
    *,
    advice: str = CREATE_ADVICE,
) -> None:
    """Refuse a stratum, of the ones whose size `sizes` gives, drawing more households (count,
    or ratio raised to `min`) than a general item's cap allows."""
    for item in items:
        for stratum in rule.strata:
            size = sizes.get(stratum.name, 0)
            if not size:
                continue
            k = quota(stratum, size)
            if problem := cap_problem(item, k, size, default_cap):
                how = "" if stratum.count == k and not stratum.min else f"（{stratum.describe()}）"
                raise ValidationFailed(f"分层“{stratum.name}”抽取 {k} 户{how}，{problem}。{advice}")


def check_caps(
    rule: SamplingRule,
    items: Sequence[Item],
    default_cap: str,
    sizes: Mapping[str, int],
    *,
    advice: str = CREATE_ADVICE,
) -> None:
    """Refuse a stratum drawing above a general item's cap: its ratio, and — for the strata
    whose size `sizes` gives — the households it draws (count, or ratio raised to `min`)."""
    check_cap_ratios(rule, items, default_cap, advice=advice)
    check_cap_counts(rule, items, default_cap, sizes, advice=advice)


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
    check_cap_ratios(rule, items, default_cap)
    check_risk_order(rule)

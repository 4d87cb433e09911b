"""Verifiable random selection (docs/architecture.md §3). Pure functions: no DB, no clock, no
other randomness.

Anyone with the exported pool ("id,stratum" lines), the revealed seed and the beacon can redo
a draw in a few lines of any language:

    final  = sha256(seed || utf8(beacon))            (or seed itself without a beacon)
    key(i) = sha256(final || utf8(task_code) || 0x00 || utf8(id))
    per stratum: take the k smallest keys, k from the rule; selection = ascending key order.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from math import isqrt
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from core.errors import ValidationFailed
from core.validation_zh import Loc, error_lines, example_at, loc_text, toml_value

ALGORITHM_VERSION = "lianjian-draw-1"
INSPECTOR_PREFIX = "inspector:"
Candidate = tuple[str, str]  # (id, stratum)
_ROUNDING = {"half_up": ROUND_HALF_UP, "up": ROUND_CEILING, "down": ROUND_FLOOR}


# risk classes (风险分类) as a clerk names them; "" is 未分类
RISK_LABELS = {"A": "低风险", "B": "一般风险", "C": "较高风险", "D": "高风险"}


class StratumRule(BaseModel):
    """How many to take from one stratum, and (for target pools) who belongs to it."""

    name: str
    ratio: Decimal | None = Field(None, examples=["0.05"])
    count: int | None = Field(None, examples=[10])
    rounding: Literal["half_up", "up", "down"] = "half_up"
    min: int = 0
    risk_levels: list[str] = []  # membership: any of these risk classes …
    flags: list[str] = []  # … or any of these flags; both empty = everyone left

    @model_validator(mode="after")
    def _check(self) -> StratumRule:
        if (self.ratio is None) == (self.count is None):
            raise ValueError(f"分层“{self.name}”须且只能指定比例或数量之一")
        if self.ratio is not None and not Decimal(0) < self.ratio <= Decimal(1):
            raise ValueError(f"分层“{self.name}”的抽查比例须大于 0 且不超过 100%")
        if (self.count is not None and self.count < 0) or self.min < 0:
            raise ValueError(f"分层“{self.name}”的数量不能为负数")
        return self

    def matches(self, risk_level: str, flags: Iterable[str]) -> bool:
        if not self.risk_levels and not self.flags:
            return True
        return risk_level in self.risk_levels or any(f in self.flags for f in flags)

    def members(self) -> str:
        """Who belongs, in words: "高风险（D）或投诉举报"; everyone left when it names none."""
        risks = "、".join(
            f"{RISK_LABELS.get(level, level)}（{level}）" if level else "未分类"
            for level in self.risk_levels
        )
        return "或".join(filter(None, (risks, "、".join(self.flags)))) or "其余全部对象"

    def describe(self) -> str:
        if self.count is not None:
            amount = f"{self.count} 户"
        else:
            assert self.ratio is not None
            word = {"half_up": "四舍五入", "up": "向上取整", "down": "向下取整"}[self.rounding]
            amount = f"{(self.ratio * 100).normalize():f}%（{word}）"
        return amount + (f"，至少 {self.min} 户" if self.min else "")


class SamplingRule(BaseModel):
    strata: list[StratumRule]
    ratio_reason: str = ""  # 工作方案: why a higher-risk stratum gets a lower ratio (draws.ratios)

    @model_validator(mode="after")
    def _check(self) -> SamplingRule:
        if not self.strata:
            raise ValueError("抽取规则至少要有一个分层")
        names = [s.name for s in self.strata]
        if len(set(names)) != len(names):
            raise ValueError("分层名称不能重复")
        return self

    def stratum_of(self, risk_level: str, flags: Iterable[str]) -> str | None:
        """The first stratum a target belongs to (rule order is priority order)."""
        flag_list = list(flags)
        for s in self.strata:
            if s.matches(risk_level, flag_list):
                return s.name
        return None

    def public(self) -> dict[str, Any]:
        """The rule as published in `draw show --json`."""
        return {
            "strata": [
                {
                    "name": s.name,
                    **({"ratio": str(s.ratio)} if s.ratio is not None else {"count": s.count}),
                    "rounding": s.rounding,
                    "min": s.min,
                }
                for s in self.strata
            ]
        }


def rule_lines(data: dict[str, Any] | None) -> list[str]:
    """A published rule (`SamplingRule.public`), one stratum a line, as /public/draws and
    `draw show` print it: "重点关注：10%（向上取整），至少 1 户"."""
    return [f"{s.name}：{s.describe()}" for s in parse_rule(data).strata] if data else []


def parse_rule(data: dict[str, Any]) -> SamplingRule:
    """Validate a rule from config/JSON with a Chinese message on error."""
    try:
        return SamplingRule.model_validate(data)
    except ValidationError as err:
        lines = error_lines(err, SamplingRule, _rule_place, _rule_example)
        raise ValidationFailed(f"抽取规则有误：{'；'.join(lines)}") from err
    except InvalidOperation as err:
        raise ValidationFailed("抽取规则有误：比例不是有效的数字") from err


def _rule_place(loc: Loc) -> str:
    """A rule's part as the task file writes it: ("strata", 1, "ratio") is the second
    [[rule.strata]]'s ratio."""
    if loc[:1] == ("strata",) and len(loc) > 1 and isinstance(loc[1], int):
        part = f"第 {loc[1] + 1} 个分层（[[rule.strata]]）"
        return f"{part}的 {loc_text(loc[2:])}" if len(loc) > 2 else part
    return loc_text(loc)


def _rule_example(loc: Loc) -> str:
    value = example_at(SamplingRule, loc)
    key = next((p for p in reversed(loc) if isinstance(p, str)), "")
    return f"{key} = {toml_value(value)}" if value and key != "strata" else ""


def new_seed() -> bytes:
    return secrets.token_bytes(32)


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def final_seed(seed: bytes, beacon: str | None) -> bytes:
    return hashlib.sha256(seed + beacon.encode()).digest() if beacon else seed


def quota(rule: StratumRule, n: int) -> int:
    if rule.count is not None:
        k = rule.count
    else:
        assert rule.ratio is not None
        k = int((rule.ratio * n).quantize(Decimal(1), rounding=_ROUNDING[rule.rounding]))
    return min(max(k, rule.min), n)


def pool_csv_lines(candidates: Iterable[Candidate]) -> list[str]:
    return [f"{i},{s}" for i, s in sorted(candidates)]


def pool_hash(candidates: Iterable[Candidate]) -> str:
    return hashlib.sha256("\n".join(pool_csv_lines(candidates)).encode()).hexdigest()


def pool_csv(candidates: Iterable[Candidate]) -> str:
    return "\n".join(["id,stratum", *pool_csv_lines(candidates)]) + "\n"


def keys_for(ids: Sequence[str], seed_final: bytes, task_code: str) -> list[bytes]:
    base = hashlib.sha256(seed_final + task_code.encode() + b"\x00")
    out: list[bytes] = []
    append, copy = out.append, base.copy
    for i in ids:
        h = copy()
        h.update(i.encode())
        append(h.digest())
    return out


def order_by_key(ids: Sequence[str], seed_final: bytes, task_code: str) -> list[str]:
    """All ids in ascending key order (inspector ordering, replacement order)."""
    keys = keys_for(ids, seed_final, task_code)
    return [i for _, i in sorted(zip(keys, ids, strict=True))]


def select(
    candidates: Sequence[Candidate], rule: SamplingRule, seed_final: bytes, task_code: str
) -> list[str]:
    """The selection: per stratum the k smallest keys; all chosen ids in ascending key order."""
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for i, s in candidates:
        by_stratum[s].append(i)
    chosen: list[tuple[bytes, str]] = []
    for stratum in rule.strata:
        ids = by_stratum.get(stratum.name, [])
        k = quota(stratum, len(ids))
        if k == 0:
            continue
        chosen.extend(_k_smallest(keys_for(ids, seed_final, task_code), ids, k))
    chosen.sort()
    return [i for _, i in chosen]


def _k_smallest(keys: list[bytes], ids: Sequence[str], k: int) -> list[tuple[bytes, str]]:
    """The k (key, id) pairs with the smallest keys, exactly.

    Keys are uniform on [0, 2^256), so about k·2^256/n bounds the k-th smallest; a margin of
    six standard deviations makes a miss practically impossible, and a miss falls back to a
    full sort, so the answer never depends on the shortcut. This avoids sorting the whole
    stratum (the draw then costs little more than hashing it).
    """
    n = len(keys)
    bound = ((k + 6 * isqrt(k) + 16) << 256) // n
    if bound < 1 << 256:
        limit = bound.to_bytes(32, "big")
        below = [(key, i) for key, i in zip(keys, ids, strict=True) if key < limit]
        if len(below) >= k:
            below.sort()
            return below[:k]
    return sorted(zip(keys, ids, strict=True))[:k]


def stratum_sizes(candidates: Iterable[Candidate]) -> dict[str, int]:
    sizes: dict[str, int] = defaultdict(int)
    for _, s in candidates:
        sizes[s] += 1
    return dict(sizes)

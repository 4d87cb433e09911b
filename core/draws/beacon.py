"""Stage 2, draws: the public beacon (docs/architecture.md §3). A freeze names a source whose
value nobody can know yet; the confirmation accepts the value only once it is published, in the
source's form.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from core.changes import Ctx
from core.clock import CHINA_TZ
from core.errors import InvalidTransition, ValidationFailed
from core.models import Draw
from core.rules import Rules
from core.workdays import cn_date, cn_datetime

_CN_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_BEACON_MAX_CHARS = 64
_3D_DIGITS = re.compile(r"[0-9](?:\s*[0-9]){2}")


def beacon_day(source: str) -> dt.date | None:
    """The date a beacon source names ("2026年3月3日…" or "…2026-03-03…"); None when it names
    none. Several different dates make the source ambiguous and are refused."""
    text = unicodedata.normalize("NFKC", source)
    found: set[dt.date] = set()
    for m in (*_CN_DATE.finditer(text), *_ISO_DATE.finditer(text)):
        try:
            found.add(dt.date(int(m[1]), int(m[2]), int(m[3])))
        except ValueError:
            raise ValidationFailed(f"信标来源中的日期“{m[0]}”无效") from None
    if len(found) > 1:
        raise ValidationFailed("信标来源中写了多个日期，请只写信标公布的那一天")
    return found.pop() if found else None


def beacon_ready_at(day: dt.date, rules: Rules) -> dt.datetime:
    """From this instant the beacon of `day` counts as published (China time, Rules)."""
    return dt.datetime.combine(day, rules.beacon_ready_time, CHINA_TZ)


def future_beacon_day(ctx: Ctx, source: str) -> dt.date:
    """The beacon's date, which must still lie ahead: a value anyone (the lead included) can
    already know at freeze would let the freezer choose the selection."""
    day = beacon_day(source)
    if day is None:
        raise ValidationFailed(
            "信标来源须写明信标公布的日期（例如：2026年12月2日福彩3D开奖号码），以便任何人核对"
        )
    if beacon_ready_at(day, ctx.rules) <= ctx.clock.now():
        raise ValidationFailed(
            f"信标日期 {cn_date(day)} 的信标值已公布，"
            "请改用今后才公布的信标（例如明天的福彩3D开奖号码）"
        )
    return day


def _is_3d(source: str) -> bool:
    return "3D" in unicodedata.normalize("NFKC", source).upper()


def frozen_beacon_day(frozen: Draw) -> dt.date | None:
    """The date of the beacon a freeze announced; None when its source names none."""
    stored = frozen.parameters.get("beacon_date")  # absent on draws frozen before it was kept
    return dt.date.fromisoformat(stored) if stored else beacon_day(frozen.beacon_source)


def checked_beacon(ctx: Ctx, frozen: Draw, value: str) -> str:
    """The beacon value, accepted only once it is published and only in the source's form.
    Full-width input is stored half-width: everyone recomputes from the stored text."""
    day = frozen_beacon_day(frozen)
    if day is None:
        raise InvalidTransition(
            "冻结时的信标来源没有写明日期，无法确认信标已公布；请重新执行“抽取”并写明信标日期"
        )
    ready = beacon_ready_at(day, ctx.rules)
    if ctx.clock.now() < ready:
        raise InvalidTransition(
            f"信标（{frozen.beacon_source}）尚未公布，{cn_datetime(ready)} 起才能确认抽取"
        )
    value = unicodedata.normalize("NFKC", value or "").strip()
    if not value:
        raise ValidationFailed(f"请输入信标值（{frozen.beacon_source}）")
    if _is_3d(frozen.beacon_source) and not _3D_DIGITS.fullmatch(value):
        raise ValidationFailed(
            f"福彩3D开奖号码应为 3 位数字（例如 4 1 7 或 417），请按{frozen.beacon_source}"
            f"的开奖公告输入"
        )
    if len(value) > _BEACON_MAX_CHARS:
        raise ValidationFailed(f"信标值不能超过 {_BEACON_MAX_CHARS} 个字符")
    return value

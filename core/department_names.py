"""Which department an officer means when they type its name in chat: its code, full name or
short name, or the informal name people say — 卫健委 for 县卫生健康委员会 or 县卫生健康局,
市场监管局 for 县市场监督管理局, 发改委 for 县发展和改革局 (seed 003's member list writes
旗卫健委, 旗发改委, 旗住建局…), or the name of the body whose work it took over (环保局 for
县生态环境局). An informal name is taken only when it fits exactly one of the departments the
command may name."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound, ValidationFailed
from core.models import Department

# A level prefix (县卫健委, 旗住建局) and an organ-type suffix (…局, …委, …委员会) are not part
# of what tells departments apart: 卫健委 and 卫健局 are one department in everyday speech.
_LEVEL = re.compile(r"^(?:某?[县旗区市州盟])")
_ORGAN = re.compile(r"(?:委员会|分局|局|委|厅|办公室|办|大队|支队|中心)$")


# Bodies merged away by the 2018 reform, still named so in everyday speech, and the name of the
# department that took their work: tried only when the word fits no department as it is (a
# county may still have a 城市管理局).
_FORMER = {
    "环保": "生态环境",
    "环境保护": "生态环境",
    "国土": "自然资源",
    "国土资源": "自然资源",
    "工商": "市场监督管理",
    "工商行政管理": "市场监督管理",
    "质监": "市场监督管理",
    "质量技术监督": "市场监督管理",
    "食药监": "市场监督管理",
    "食品药品监督管理": "市场监督管理",
    "安监": "应急管理",
    "安全生产监督管理": "应急管理",
    "城管": "综合行政执法",
}


def _cores(text: str) -> set[str]:
    """The text without its level prefix and organ-type suffix (each optional), two
    characters at least."""
    text = text.strip()
    return _forms(text) | _forms(_LEVEL.sub("", text))


def _abbreviates(short: str, full: str) -> bool:
    """Chinese abbreviation: the short form's characters in order within the full one,
    starting with its first (卫健 → 卫生健康, 发改 → 发展和改革, 人社 → 人力资源和社会保障)."""
    if not short or short[0] != full[0] or len(short) > len(full):
        return False
    rest = iter(full)
    return all(ch in rest for ch in short)


def is_named_exactly(department: Department, word: str) -> bool:
    word = word.strip()
    return bool(word) and (
        word.upper() == department.code.upper() or word in (department.name, department.short_name)
    )


def _informally_named(department: Department, word: str) -> bool:
    """A level the word names must be the department's own: 市市场监管局 is the city's bureau,
    not 县市场监督管理局 (a word starting with one of the level characters, as 市场监管局
    does, is tried whole first)."""
    known = _cores(department.name) | _cores(department.short_name)
    if _fits(_forms(word.strip()), known):
        return True
    level, own = _LEVEL.match(word.strip()), _LEVEL.match(department.name)
    if level is None or (own is not None and own.group()[-1] != level.group()[-1]):
        return False
    return _fits(_forms(_LEVEL.sub("", word.strip())), known)


def _forms(text: str) -> set[str]:
    """The text with and without its organ-type suffix, two characters at least."""
    return {form for form in {text, _ORGAN.sub("", text)} if len(form) >= 2}


def _fits(said: set[str], known: set[str]) -> bool:
    return any(s == k or _abbreviates(s, k) for s in said for k in known)


def named(departments: Sequence[Department], word: str) -> list[Department]:
    """The departments `word` names: the one it names exactly (code, name, short name), else
    every one its informal form fits — the caller takes one only when it is alone."""
    exact = [d for d in departments if is_named_exactly(d, word)]
    if exact:
        return exact[:1]
    if not word.strip():
        return []
    found = [d for d in departments if _informally_named(d, word)]
    current = _current_name(word)
    if found or current is None:
        return found
    return [d for d in departments if _informally_named(d, current)]


def _current_name(word: str) -> str | None:
    """The word with a former body's name put as today's (县环保局 → 县生态环境局, level and
    organ kept), or None when it names no former body."""
    word = word.strip()
    level = _LEVEL.match(word)
    head = level.group() if level else ""
    body = word[len(head) :]
    core = _ORGAN.sub("", body)
    current = _FORMER.get(core)
    return head + current + body[len(core) :] if current else None


def ambiguous(word: str, found: Sequence[Department]) -> str:
    """The refusal when an informal name fits several departments."""
    names = "、".join(d.name for d in found)
    return f"“{word.strip()}”可以指{names}，请写部门全称、简称或代码"


def unknown(departments: Sequence[Department], word: str) -> str:
    """The refusal when `word` names no department: the ones whose names hold it (县 is in
    every one) to choose from, else the name it is one character from, and how to name one."""
    holding = [d for d in departments if word.strip() and word.strip() in d.name]
    if holding:
        return ambiguous(word, holding)
    return (
        f"找不到部门“{word.strip()}”{did_you_mean(departments, word) or '，'}"
        "请写部门全称、简称或代码（如 县卫生健康局、卫健、WJ）"
    )


# Where organs' and their units' names end (卫健委, 住建局, 办公厅, 市监所, 执法大队); 场所 and
# 住所 end so too, but are places a reason starts with (公共场所卫生…).
_ORGAN_END = re.compile(r"(?:委|局|厅|办|队|(?<![场住])所)$")
# Shorter words are one character from too many of a reason's first words (卫生 → 卫健).
_RESPELT_MIN = 3


def one_off(departments: Sequence[Department], word: str) -> list[Department]:
    """The departments the word names once one character typed twice, changed or left out is
    put right — 住建建局 (住建局), 卫建委 (卫健委: an input method's homophone). Words under three
    characters reach none."""
    word = word.strip()
    if not _RESPELT_MIN <= len(word) <= max((len(d.name) + 1 for d in departments), default=0):
        return []
    # the first character after the level stays: it tells a name most (卫建委 is not 住建委)
    level = _LEVEL.match(word)
    first = (level.end() if level else 0) + 1
    found = []
    for department in departments:
        chars = sorted(set(department.name + department.short_name))
        if word[first - 1] not in chars:
            continue  # the character kept is in none of its names
        tries = [
            word[:i] + word[i + 1 :] for i in range(first, len(word)) if word[i - 1] == word[i]
        ]
        tries += [word[:i] + c + word[i + 1 :] for i in range(first, len(word)) for c in chars]
        tries += [word[:i] + c + word[i:] for i in range(first, len(word) + 1) for c in chars]
        if any(
            len(tried) >= _RESPELT_MIN
            and (is_named_exactly(department, tried) or _informally_named(department, tried))
            and named(departments, tried) == [department]
            for tried in tries
            if tried != word
        ):
            found.append(department)
    return found


def did_you_mean(departments: Sequence[Department], word: str) -> str:
    """For a word one character from naming a department, the question after a refusal:
    ，是不是县卫生健康局（卫健）？ — "" for any other word."""
    meant = "、".join(
        d.name + (f"（{d.short_name}）" if d.short_name else "") for d in one_off(departments, word)
    )
    return f"，是不是{meant}？" if meant else ""


def looks_like_a_name(departments: Sequence[Department], word: str) -> bool:
    """Whether a word naming no department is a department's name misspelt (卫建委) rather than
    other words (a reason's first, or a whole reason typed without a space): one character
    from naming one, or a name's letters alone (no punctuation, no longer than a name) that
    end as organs' names end and start, after the level, as one of the county's names —
    “…请补充后报送县市场监管局” and “请按程序办” are sentences."""
    word = word.strip()
    if one_off(departments, word):
        return True
    longest = max((len(d.name) for d in departments), default=0)
    if not (_ORGAN_END.search(word) and word.isalpha() and len(word) <= longest + 1):
        return False
    level = _LEVEL.match(word)
    first = word[level.end() if level else 0]
    return any(first in d.name + d.short_name for d in departments)


# Where a department's name may end inside a longer name of one of its units.
_NAME_END = re.compile(r"委员会|局|委")


def named_by_unit(departments: Sequence[Department], text: str) -> list[Department]:
    """The departments named by the longest head of `text` that one of their units' names
    follows: 县市场监管局执法大队, 卫健委卫生监督所 (001 第十七条's case-handling bodies belong
    to a department); [] when no head names one."""
    text = text.strip()
    for end in reversed([m.end() for m in _NAME_END.finditer(text) if m.end() < len(text)]):
        found = named(departments, text[:end])
        if found:
            return found
    return []


async def county_departments(session: AsyncSession) -> list[Department]:
    """The county's departments, by code."""
    return list(await session.scalars(select(Department).order_by(Department.code)))


async def find(session: AsyncSession, word: str) -> Department:
    """The one department `word` names among the county's (code, full or short name, or an
    informal name fitting one alone); a clear refusal otherwise."""
    return one_of(list(await session.scalars(select(Department))), word)


def one_of(departments: Sequence[Department], word: str) -> Department:
    """The one of `departments` that `word` names; a clear refusal otherwise."""
    found = named(departments, word)
    if len(found) > 1:
        raise ValidationFailed(ambiguous(word, found))
    if not found:
        raise NotFound(unknown(departments, word))
    return found[0]

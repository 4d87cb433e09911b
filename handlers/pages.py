"""What every web-page handler receives and returns (the pages' counterpart of HandlerCtx).

bot/pages reads the HTTP request, verifies the signed link and opens one transaction; the page
handler calls core and renders a template into a `Page`; bot/pages turns the Page into the
HTTP response and commits. Handlers never see aiohttp.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.changes import Ctx
from core.clock import Clock
from core.errors import DomainError, NotFound
from core.links import LinkExpired
from core.models import Officer
from core.render import render
from core.rules import Rules


@dataclass
class PageCtx:
    session: AsyncSession
    clock: Clock
    rules: Rules
    officer: Officer  # the officer the signed link names
    token: str  # the link token, posted back by the page's forms
    csrf: str = ""  # the form token bound to the link; bot/pages checks it on every POST
    # read at once: a rolled-back change expires the loaded rows, and async cannot reload lazily
    officer_label: str = field(init=False)

    def __post_init__(self) -> None:
        self.officer_label = f"{self.officer.name}（{self.officer.department.name}）"

    @cached_property
    def core(self) -> Ctx:
        """The core services' context, acting as the link's officer."""
        return Ctx(session=self.session, clock=self.clock, actor=self.officer, rules=self.rules)


@dataclass(frozen=True)
class Page:
    html: str
    status: int = 200
    file: bytes | None = None  # a file (an attachment) instead of HTML
    mime: str = ""
    filename: str = ""


def first(raw: Mapping[str, Sequence[str]], name: str) -> str:
    """The first value posted under `name`, "" when none was."""
    return (raw.get(name) or [""])[0]


def page(template: str, status: int = 200, **context: Any) -> Page:
    """Render `templates/web/<template>`."""
    return Page(render(f"web/{template}", **context), status)


# the chat command that gives a fresh link to each signed page (its link action)
_FRESH_LINK = {
    "review": "发送“案件 案件号”获取新的审核链接",
    "result": "发送“我的检查”获取新的填报链接",
    "correction": "发送“更正 案件号”获取新的更正链接",
    "documents": "发送“通知书 案件号”获取检查文书",
    "respond": "发送“任务”查看待答复的邀请",
}


# the signed forms' free-text fields, by the last part of their name ("item.3.problems")
_TYPED_TEXT = {
    "problems": "发现的问题",
    "handling": "处理情况",
    "referral_to": "移送对象",
    "referral_content": "移送内容",
    "remarks": "备注",
    "reason": "理由",
}

Typed = Sequence[tuple[str, str]]  # (label, text) of what an officer typed into a form


def typed_text(fields: Mapping[str, Sequence[str]]) -> Typed:
    """The free text posted in a form, labelled, to hand back if its link expired meanwhile."""
    return [
        (_TYPED_TEXT[key], value)
        for name, values in fields.items()
        if (key := name.rpartition(".")[2]) in _TYPED_TEXT
        for value in values
        if value.strip()
    ]


def denied(err: DomainError, action: str = "", typed: Typed = ()) -> Page:
    """A refused or broken link, or a missing record, as a page that says what to do;
    `action`: the link's page, whose chat command gives a fresh link. `typed` is shown back
    only when the link is genuine and merely expired: a forged link's post is echoed to no one."""
    return page(
        "denied.html",
        404 if isinstance(err, NotFound) else 403,
        message=err.message,
        fresh=_FRESH_LINK.get(action, "发送“任务”查看待办"),
        typed=typed if isinstance(err, LinkExpired) else (),
    )

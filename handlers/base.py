"""What every handler receives and the small helpers they share.

Handlers never import bot/: the dispatcher hands them a `HandlerCtx` (one transaction, the
clock, the rules, the resolved officer, the event, and an optional signed-link builder) and
they reply through it. Replies are enqueued in the same transaction as the change they report.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox
from core.changes import Ctx
from core.clock import Clock
from core.codes import case_number
from core.errors import ValidationFailed
from core.messages import Destination, Event, OutMessage
from core.models import Officer
from core.render import render
from core.rules import Rules

# (officer_id, invitation_id) -> signed H5 link to the invitation response page
LinkBuilder = Callable[[int, int], str]
# The only thing a group conversation is told: the answer itself went to the officer alone.
SENT_PRIVATELY = "已私信发送给您，请在与机器人的单聊中查看。"

_MENTION = re.compile(r"^(?:\s*[@＠]\S+)+\s*")
# Item codes and similar lists may be separated by spaces, commas or the enumeration comma.
_LIST_SPLIT = re.compile(r"[\s,;、]+")


@dataclass
class HandlerCtx:
    session: AsyncSession
    clock: Clock
    rules: Rules
    officer: Officer
    event: Event
    links: LinkBuilder | None = None
    # The neutral meaning of the event's platform extras, filled in by the dispatcher:
    conversation: Destination | None = None  # this chat, when the platform lets answers go there
    card_ref: str = ""  # the handle that updates the clicked card; "" when it cannot be updated
    step: str = ""  # the conversation step this message answers, if any
    sent: list[OutMessage] = field(default_factory=list)  # what this event enqueued as replies
    _told_group: bool = field(
        default=False, init=False
    )  # the group has had its "sent privately" note for this event

    @cached_property
    def core(self) -> Ctx:
        """The core services' context, acting as this
        officer (one per event: caches the calendar)."""
        return Ctx(session=self.session, clock=self.clock, actor=self.officer, rules=self.rules)

    def reply_destination(self) -> Destination:
        """A single chat that can be answered in (a DingTalk session webhook) gets the answer
        there; anything else goes to the officer.

        Replies in a group go to the officer privately: they carry personal data and signed
        links (invitation cards) that any other group member could open and use.
        """
        if self.conversation is not None and not self.event.is_group:
            # the officer's own single chat: their signed page links may go there
            return self.conversation.model_copy(update={"officer_id": self.officer.id})
        return Destination.officer(self.officer.id)

    async def reply(self, msg: OutMessage) -> None:
        now = self.clock.now()
        await outbox.enqueue(self.session, self.reply_destination(), msg, now=now)
        self.sent.append(msg)
        if self.event.is_group and self.conversation is not None and not self._told_group:
            self._told_group = True
            await outbox.enqueue(
                self.session, self.conversation, OutMessage.text(SENT_PRIVATELY), now=now
            )

    async def say(self, template: str, **context: Any) -> None:
        """Render `templates/messages/<template>` and reply with it as markdown."""
        await self.reply(
            OutMessage(kind="markdown", body=render(f"messages/{template}", **context))
        )


class UsageError(ValidationFailed):
    """A malformed command; the dispatcher answers with that command's usage and example."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Args:
    """What follows the command word: normalised words, and the raw text for free-form reasons."""

    raw: str

    @cached_property
    def words(self) -> list[str]:
        return normalize(self.raw).split()

    def code(self, index: int) -> str | None:
        """The index-th word as an upper-case code (LJ-2026-001), or None when missing. A phone's
        input method adds what no code has: a dash of another width (LJ—2026—001), a closing
        。or ， and quotes around it; a case's number may leave out its zeros (LJ-2026-001-7)."""
        if len(self.words) <= index:
            return None
        word = self.words[index]
        return case_number(word.translate(_DASHES).strip(_AROUND_CODES) or word)

    def rest_after(self, count: int) -> str:
        """The raw text after the first `count` words (keeps the officer's own punctuation),
        without the separator typed before it (`拒绝 编号 ：理由`): not part of the text. Text of
        separators only is kept, for the refusal to say it is no reason."""
        parts = self.raw.split(maxsplit=count)
        rest = parts[count].strip() if len(parts) > count else ""
        return rest.lstrip(_SEPARATORS).strip() or rest

    def list_after(self, count: int) -> list[str]:
        return [w for w in _LIST_SPLIT.split(normalize(self.rest_after(count))) if w]


Handler = Callable[[HandlerCtx, Args], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    name: str  # the Chinese command word
    aliases: tuple[str, ...]
    usage: str  # e.g. "接受 编号 [事项代码…]"
    example: str
    summary: str
    handler: Handler
    hidden: bool = False  # not listed by 帮助 (e.g. 取消 outside a conversation)
    # only reads, and replies after its last possible refusal: a refusal leaves nothing to
    # undo, so the dispatcher runs it without a SAVEPOINT
    reads_only: bool = False
    # the roles that may use it (README "Access", tests/access_matrix.py); (): any officer
    roles: tuple[str, ...] = ()

    def words(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def open_to(self, officer: Officer) -> bool:
        return not self.roles or any(officer.has_role(r) for r in self.roles)

    def usage_text(self, problem: str = "") -> str:
        lead = f"{problem}\n" if problem else ""
        return f"{lead}用法：{self.usage}\n例如：{self.example}"


# after NFKC (normalize): the dashes it leaves, and the punctuation typed around a code
_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−", "-"))
_SEPARATORS = " :：,，、;；.。-—"  # typed between a code and the text after it
_AROUND_CODES = ".,;:!?、。“”‘’\"'《》"


def normalize(text: str) -> str:
    """Full-width letters, digits, spaces and punctuation to half-width; runs of space to one."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def strip_mentions(text: str) -> str:
    """Drop leading "@机器人" tokens that group chats put before the command."""
    return _MENTION.sub("", text).strip()


def match_command(text: str, commands: list[Command]) -> tuple[Command, Args] | None:
    """The command the text starts with (longest word first) and what follows it.

    Tolerates a missing space after a Chinese command word ("任务LJ-2026-001"). NFKC keeps
    full-width ASCII one character long, so the raw remainder lines up with the normalised one.
    """
    text = strip_mentions(text)
    heads: dict[int, str] = {}  # the text's first n characters, normalised: once per length
    for word, command in _candidates(commands):
        head = heads.get(len(word))
        if head is None:
            head = heads[len(word)] = unicodedata.normalize("NFKC", text[: len(word)]).lower()
        if head != word:
            continue
        rest = text[len(word) :]
        if not rest or rest[0].isspace() or (_is_cjk(word[-1]) and not _is_cjk(rest[0])):
            # "任务：LJ-2026-001" — a colon or comma after the command word is a separator
            return command, Args(rest.strip().lstrip(":：,，、").strip())
    return None


# command list (by its commands' ids) -> its (word, command) pairs, longest word first; the
# entries keep the commands alive, so an id is never reused for another command
_CANDIDATES: dict[tuple[int, ...], list[tuple[str, Command]]] = {}


def _candidates(commands: list[Command]) -> list[tuple[str, Command]]:
    key = tuple(map(id, commands))
    found = _CANDIDATES.get(key)
    if found is None:
        if len(_CANDIDATES) > 64:  # tests build their own lists
            _CANDIDATES.clear()
        found = _CANDIDATES[key] = sorted(
            ((w.lower(), c) for c in commands for w in c.words()),
            key=lambda wc: len(wc[0]),
            reverse=True,
        )
    return found


def split_command(text: str, commands: list[Command]) -> str:
    """The command a text naming none meant when a space split its word (`我的 检查`)."""
    words = normalize(strip_mentions(text)).split()
    found = match_command("".join(words[:2]), commands) if len(words) > 1 else None
    return found[0].name if found else ""


def near_command(text: str, commands: list[Command]) -> str:
    """The command a text naming none meant when one character of its word is wrong, typed
    twice or left out (提叫 for 提交: an input method's homophone): "" unless exactly one
    Chinese command word is that near, so that everyday words (你好, 收到) get no guess."""
    head = first_word(text)
    typed = head[: next((i for i, ch in enumerate(head) if not _is_cjk(ch)), len(head))]
    if len(typed) < 2:
        return ""
    near = {
        command.name
        for command in commands
        for word in command.words()
        if len(word) >= 2 and all(map(_is_cjk, word)) and _one_edit_apart(typed, word)
    }
    return near.pop() if len(near) == 1 else ""


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether one character changed, added or removed makes `a` into `b` (not when equal)."""
    if len(a) > len(b):
        a, b = b, a
    if len(b) - len(a) > 1 or a == b:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    return any(b[:i] + b[i + 1 :] == a for i in range(len(b)))


def first_word(text: str) -> str:
    words = normalize(strip_mentions(text)).split()
    return words[0] if words else ""


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"

"""Event → handler, behind a fixed middleware order (docs/architecture.md §2):

errors → resolve officer → per-officer lock → conversation step → route.

Runs inside the inbox worker's transaction and never commits. User errors (DomainError) become
a Chinese reply; the handler's own writes are undone by a SAVEPOINT so a refused change leaves
nothing behind, while the reply and (for PermissionDenied) the audit row survive. Anything else
is re-raised for the inbox worker to record and retry: officers never see a stack trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot.pages.invitation import invitation_link
from bot.platforms.extras import extras_of
from bot.services import Services
from bot.workers import NotNow
from core import access, officers, outbox
from core.cards import InvitationAction, unpack_action
from core.changes import Ctx, record
from core.errors import DomainError
from core.messages import Destination, Event, OutMessage, Platform
from core.models import Conversation, Officer
from core.render import render
from handlers import conversation, invitations
from handlers.base import (
    HandlerCtx,
    LinkBuilder,
    UsageError,
    first_word,
    match_command,
    near_command,
    normalize,
    split_command,
    strip_mentions,
)
from handlers.commands import COMMANDS, STEPS


class Dispatcher:
    def __init__(self, services: Services, links: LinkBuilder | None = None) -> None:
        self.services = services
        self.links = links if links is not None else partial(invitation_link, services)

    def groupable(self, event: Event) -> bool:
        """Whether the event may share a transaction with others on PostgreSQL
        (bot.workers.InboxWorker.handle_rows): a text command that only reads, whose handling
        locks nothing but its officer (and the audit chain's head for a refusal)."""
        if not _is_text(event):
            return False
        matched = match_command(event.text, COMMANDS)
        return matched is not None and matched[0].reads_only

    async def handle(self, session: AsyncSession, event: Event, *, wait: bool = True) -> None:
        """`wait=False`: raise NotNow, before anything is written, instead of waiting for the
        officer's lock (or when the sender is no officer): the event goes on its own."""
        lookup = self.services.core_ctx(session)
        officer = await officers.by_account(
            lookup, event.platform, event.user_id, lock=True, skip_locked=not wait
        )
        if officer is None:
            if not wait:
                raise NotNow(event.event_id)
            left = await officers.holder(lookup, event.platform, event.user_id)
            if left is None:
                await self._refuse_unknown(session, event)
            else:  # a card click too: every refusal is audited and answered
                await self._tell_left(self._handler_ctx(session, event, left))
            return
        ctx = self._handler_ctx(session, event, officer)
        # the pending step is read (an expired one deleted) before the command's savepoint
        step = await conversation.pending(ctx) if _is_text(event) else None
        await self._guarded(
            ctx, partial(self._route, step=step), savepoint=not _reads_only(event, step)
        )

    def _handler_ctx(self, session: AsyncSession, event: Event, officer: Officer) -> HandlerCtx:
        extras = extras_of(event)
        return HandlerCtx(
            session=session,
            clock=self.services.clock,
            rules=self.services.rules,
            officer=officer,
            event=event,
            links=self.links,
            conversation=extras.reply_to(),
            card_ref=extras.card_ref(),
        )

    async def _tell_left(self, ctx: HandlerCtx) -> None:
        """An officer marked 离岗 acts no more (001 第十条(二)), but is told so and whom to ask,
        rather than meeting silence; the attempt is audited as a stranger's is."""
        await record(
            ctx.core,
            "auth.officer_left",
            f"officer:{ctx.officer.code}",
            {"event": ctx.event.kind, "command": first_word(ctx.event.text)},
        )
        await ctx.say(
            "cmd_officer_inactive.md.j2",
            officer=ctx.officer,
            liaisons=await officers.liaisons(ctx.core, ctx.officer.department_id),
        )

    async def _guarded(
        self,
        ctx: HandlerCtx,
        action: Callable[[HandlerCtx], Awaitable[None]],
        *,
        savepoint: bool = True,
    ) -> None:
        """Run `action` in a SAVEPOINT; a DomainError undoes its writes and becomes the reply.
        An action that only reads and replies last (`Command.reads_only`) has nothing to undo:
        no SAVEPOINT (two statements fewer)."""
        try:
            async with access.denials_on_record(
                ctx.core,
                action=_attempt(ctx.event),
                subject=f"officer:{ctx.officer.code}",
                savepoint=savepoint,
            ):
                await action(ctx)
        except DomainError as err:
            await self._refused(ctx, err)

    async def _route(self, ctx: HandlerCtx, step: Conversation | None) -> None:
        """Run what the event asks for: a card button, the pending `step`, or a command."""
        event = ctx.event
        if event.kind == "card_action":
            action = unpack_action(event.action_key)
            if isinstance(action, InvitationAction):
                await invitations.on_card(ctx, action)
            return
        if not _is_text(event):
            return  # images, menu clicks, "entered the chat": nothing to answer
        if step is None:
            await self._command(ctx)
            return
        if normalize(strip_mentions(event.text)).lower() in conversation.CANCEL_WORDS:
            await conversation.clear(ctx)
            await ctx.say("cmd_cancelled.md.j2", had_step=True)
            return
        known = step.step in STEPS
        if known and match_command(event.text, COMMANDS) is None:
            ctx.step = step.step
            await STEPS[step.step](ctx, step)
            return
        # A command is never taken as the step's answer (a decline reason is irreversible):
        # the step ends, and that end survives even if the command itself is refused.
        await conversation.clear(ctx)
        if known:
            await ctx.say("cmd_step_abandoned.md.j2", step=step.step, data=step.data)
        await self._guarded(ctx, self._command)

    async def _command(self, ctx: HandlerCtx) -> None:
        matched = match_command(ctx.event.text, COMMANDS)
        if matched is None:
            await ctx.reply(
                OutMessage.text(
                    render(
                        "messages/cmd_unknown.txt.j2",
                        word=first_word(ctx.event.text)[:20],
                        split=split_command(ctx.event.text, COMMANDS),
                        meant=near_command(ctx.event.text, COMMANDS),
                    )
                )
            )
            return
        command, args = matched
        try:
            await command.handler(ctx, args)
        except UsageError as err:
            raise UsageError(command.usage_text(err.message)) from None

    async def _refused(self, ctx: HandlerCtx, err: DomainError) -> None:
        """After the savepoint rolled the handler back (a denial stays audited): end a dead
        step, reply."""
        if ctx.step:  # the step cannot succeed any more (answered elsewhere, expired, denied)
            await conversation.clear(ctx)
        await ctx.reply(OutMessage.text(err.message))

    async def _refuse_unknown(self, session: AsyncSession, event: Event) -> None:
        """Audit the attempt and answer the stranger where they wrote from (the conversation's
        reply address, else their platform user id); the simulator lists officers only."""
        label = f"unknown:{event.platform}:{event.user_id}"[:64]
        ctx = Ctx(
            session=session, clock=self.services.clock, rules=self.services.rules, actor_label=label
        )
        dest = _stranger_destination(event)
        await record(
            ctx,
            "auth.unknown_user",
            f"user:{event.platform}:{event.user_id}"[:80],
            {"event": event.kind, "chat_id": event.chat_id, "answered": dest is not None},
        )
        if dest is not None:
            await outbox.enqueue(
                session,
                dest,
                OutMessage.text(render("messages/cmd_unknown_user.txt.j2")),
                now=self.services.clock.now(),
            )


def _stranger_destination(event: Event) -> Destination | None:
    if (conversation := extras_of(event).reply_to()) is not None:
        return conversation
    if event.platform != Platform.SIM and event.user_id:
        return Destination.platform_user(event.platform, event.user_id)
    return None


def _is_text(event: Event) -> bool:
    return event.kind == "text" and bool(event.text.strip())


def _reads_only(event: Event, step: Conversation | None) -> bool:
    """A text command, with no step pending, of a command that only reads and replies last."""
    if step is not None or not _is_text(event):
        return False
    matched = match_command(event.text, COMMANDS)
    return matched is not None and matched[0].reads_only


def _attempt(event: Event) -> str:
    if event.kind == "card_action":
        return f"card:{event.action_key}"[:64]
    return f"command:{first_word(event.text)}"[:64]

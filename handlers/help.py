"""帮助: every command with its usage and an example; `帮助 接受` explains one command."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.base import Args, Command, HandlerCtx


async def show(ctx: HandlerCtx, args: Args, commands: Sequence[Command]) -> None:
    word = args.words[0].lower() if args.words else ""
    one = next((c for c in commands if word in (w.lower() for w in c.words())), None)
    if one is not None:
        await ctx.say("help_command.md.j2", c=one)
        return
    # a word that names no command (帮助 审批) is said to, then the whole list
    await ctx.say(
        "help.md.j2", commands=[c for c in commands if not c.hidden], unknown=args.raw.strip()
    )

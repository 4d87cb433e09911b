"""帮助: the commands the officer's roles may use, each with its usage and an example;
`帮助 全部` lists every command, `帮助 接受` explains one."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.base import Args, Command, HandlerCtx

ALL_WORDS = ("全部", "all")  # 帮助 全部: every command, whoever asks


async def show(ctx: HandlerCtx, args: Args, commands: Sequence[Command]) -> None:
    word = args.words[0].lower() if args.words else ""
    one = next((c for c in commands if word in (w.lower() for w in c.words())), None)
    if one is not None:
        await ctx.say("help_command.md.j2", c=one)
        return
    listed = [c for c in commands if not c.hidden]
    everything = word in ALL_WORDS
    mine = listed if everything else [c for c in listed if c.open_to(ctx.officer)]
    # a word that names no command (帮助 审批) is said to, then the list
    await ctx.say(
        "help.md.j2",
        commands=mine,
        more=len(listed) - len(mine),
        everything=everything,
        unknown="" if everything else args.raw.strip(),
    )

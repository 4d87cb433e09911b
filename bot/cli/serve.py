"""`lianjian serve` and `lianjian demo`: run the bot, or walk a generated county through one
joint inspection."""

from __future__ import annotations

import argparse
import sys
from typing import Any


async def cmd_demo(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from bot.cli.common import existing_database
    from core.demo import STAGES, run_demo

    if args.db:
        existing_database(args.db, create=True)  # a missing folder is named, not a traceback

    # Only on a terminal: in CI logs or `| tail` the transcript lines alone are the output.
    with Progress(transient=True, disable=not sys.stdout.isatty()) as bar:
        job = bar.add_task("演示", total=len(STAGES))

        def stage(name: str) -> None:
            bar.update(job, completed=STAGES.index(name), description=f"演示：{name}")

        return await run_demo(
            db=args.db, seed=args.seed, targets=args.targets, out=print, stage=stage
        )


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.cli.common import existing_database
    from bot.config import load_settings
    from bot.server import run

    overrides: dict[str, Any] = {
        k: v
        for k, v in {"host": args.host, "port": args.port, "database_url": args.db}.items()
        if v is not None
    }
    settings = load_settings(args.config, **overrides)
    # named before anything starts: a missing folder, or a file that is not ours
    existing_database(settings.database_url, create=True)
    run(settings, demo=args.demo)
    return 0

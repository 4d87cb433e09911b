"""What the benchmarks' server processes share: an optional cProfile of the whole process, and
an optional count of the SQL statements it runs."""

from __future__ import annotations

import cProfile
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any


def run_profiled(run: Callable[[], None], name: str) -> None:
    """`run()`; with LIANJIAN_BENCH_PROFILE=/tmp/prof set, under cProfile, its statistics
    written to /tmp/prof.<name> when it returns (a server: on SIGTERM, as run_app exits).
    With LIANJIAN_BENCH_STATEMENTS=/tmp/st set, every SQL statement is counted by its text's
    start and the first line of our code that ran it; written to /tmp/st.<name> as JSON."""
    statements = os.environ.get("LIANJIAN_BENCH_STATEMENTS")
    counts: Counter[str] = Counter()
    if statements:
        _count_statements(counts)
    profile = os.environ.get("LIANJIAN_BENCH_PROFILE")
    try:
        if not profile:
            run()
            return
        # LIANJIAN_BENCH_PROFILE_CPU=1: CPU time of the whole process (its threads too) rather
        # than wall time, so waits (epoll, the GIL) do not show as work
        timer = time.process_time if os.environ.get("LIANJIAN_BENCH_PROFILE_CPU") else None
        profiler = cProfile.Profile(timer) if timer else cProfile.Profile()
        profiler.enable()
        try:
            run()
        finally:
            profiler.disable()
            profiler.dump_stats(f"{profile}.{name}")
    finally:
        if statements:
            with open(f"{statements}.{name}", "w") as out:
                json.dump(counts.most_common(), out, ensure_ascii=False, indent=0)


def _count_statements(counts: Counter[str]) -> None:
    import greenlet
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def caller() -> str:
        # SQLAlchemy's async layer runs the statement in a greenlet: its caller's frames
        # are those of the parent greenlet
        glet: Any = greenlet.getcurrent()
        frame: Any = sys._getframe(2)
        while frame is not None or glet is not None:
            if frame is None:
                glet = glet.parent
                frame = None if glet is None else glet.gr_frame
                continue
            file = frame.f_code.co_filename
            if file.startswith(root) and "/.venv/" not in file and "/bench/" not in file:
                return f"{os.path.relpath(file, root)}:{frame.f_lineno} {frame.f_code.co_name}"
            frame = frame.f_back
        return "?"

    @event.listens_for(Engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counts[f"{' '.join(statement.split())[:70]} @ {caller()}"] += 1

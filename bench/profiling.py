"""What the benchmarks' server processes share: an optional cProfile of the whole process."""

from __future__ import annotations

import cProfile
import os
from collections.abc import Callable


def run_profiled(run: Callable[[], None], name: str) -> None:
    """`run()`; with LIANJIAN_BENCH_PROFILE=/tmp/prof set, under cProfile, its statistics
    written to /tmp/prof.<name> when it returns (a server: on SIGTERM, as run_app exits)."""
    profile = os.environ.get("LIANJIAN_BENCH_PROFILE")
    if not profile:
        run()
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run()
    finally:
        profiler.disable()
        profiler.dump_stats(f"{profile}.{name}")

"""The leaders' summary chart (003 附件1 一(五), 000 §十三) as a PNG: per department how its cases
stand and the tasks in scope by state (figures from `core.summary.chart_data`).

matplotlib's object API (no pyplot global state), so it is safe in a worker thread beside the
event loop. Chinese labels need a CJK font: without one `render_chart` returns None and the
summary goes out as text alone.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from typing import TYPE_CHECKING

from matplotlib.ticker import MaxNLocator

from core.summary import BUCKETS, ChartData

if TYPE_CHECKING:
    from matplotlib.axes import Axes

log = logging.getLogger(__name__)

COLOURS = ("#9ecae1", "#fdae6b", "#e6550d", "#31a354")  # not yet due, this week, overdue, done
CJK_FONTS = (
    "WenQuanYi Micro Hei",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "SimHei",
    "Microsoft YaHei",
)


def cjk_font() -> str | None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def render_charts(charts: list[ChartData], *, dpi: int = 100) -> list[bytes | None]:
    """Each chart's PNG; all None when no CJK font is installed (logged once: install
    fonts-wqy-microhei), so the summaries go out as text alone."""
    font = cjk_font()
    if font is None:
        log.warning("no CJK font installed (e.g. Debian fonts-wqy-microhei): summary chart skipped")
        return [None] * len(charts)
    return [_render(data, font, dpi) for data in charts]


def render_chart(data: ChartData, *, dpi: int = 100) -> bytes | None:
    """The PNG, or None when no CJK font is installed (logged: install fonts-wqy-microhei)."""
    return render_charts([data], dpi=dpi)[0]


def _render(data: ChartData, font: str, dpi: int) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(data.departments) or ["（暂无案件）"]
    height = 2.2 + 0.42 * len(names)  # inches: a fixed frame and a row per department
    fig = Figure(figsize=(8, height), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.suptitle(f"双随机联合抽查日报 {data.day.isoformat()} · {data.scope}", fontfamily=font)
    # fixed margins in inches rather than tight_layout, which draws the figure twice
    longest = max(len(n) for n in names)
    fig.subplots_adjust(
        left=min(0.45, (0.3 + 0.14 * longest) / 8),
        right=0.98,
        top=1 - 0.75 / height,
        bottom=1.0 / height,
        wspace=0.25,
    )
    cases, tasks = fig.subplots(1, 2, width_ratios=(3, 1.4))
    _case_bars(cases, names, data, font)
    _task_bars(tasks, data, font)
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})  # no version: stable bytes
    return out.getvalue()


def _case_bars(ax: Axes, names: list[str], data: ChartData, font: str) -> None:
    left = [0] * len(names)
    for bucket, colour in zip(BUCKETS, COLOURS, strict=True):
        values = [data.departments.get(n, Counter())[bucket] for n in names]
        ax.barh(names, values, left=left, color=colour, label=bucket)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.set_title("各部门案件", fontfamily=font)
    ax.figure.legend(
        prop={"family": font, "size": "small"}, ncols=4, frameon=False, loc="lower center"
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for label in ax.get_yticklabels():
        label.set_fontfamily(font)


def _task_bars(ax: Axes, data: ChartData, font: str) -> None:
    labels = list(data.tasks_by_state) or ["无"]
    ax.bar(labels, [data.tasks_by_state[x] for x in labels], color="#6baed6")
    ax.set_title("任务状态", fontfamily=font)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for label in ax.get_xticklabels():
        label.set_fontfamily(font)
        label.set_rotation(30)

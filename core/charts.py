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

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.ticker import MaxNLocator

from core.summary import BUCKETS, ChartData

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
    fonts-wqy-microhei), so the summaries go out as text alone. Charts of the same shape (as
    many departments and task states) are drawn on one figure, updated for each: building a
    figure costs as much as drawing it."""
    font = cjk_font()
    if font is None:
        log.warning("no CJK font installed (e.g. Debian fonts-wqy-microhei): summary chart skipped")
        return [None] * len(charts)
    frames: dict[tuple[int, int], _Frame] = {}
    found: list[bytes | None] = []
    for data in charts:
        shape = (max(len(data.departments), 1), max(len(data.tasks_by_state), 1))
        if shape not in frames:
            frames[shape] = _Frame(*shape, font=font, dpi=dpi)
        found.append(frames[shape].draw(data))
    return found


def render_chart(data: ChartData, *, dpi: int = 100) -> bytes | None:
    """The PNG, or None when no CJK font is installed (logged: install fonts-wqy-microhei)."""
    return render_charts([data], dpi=dpi)[0]


def _bar(x0: float, x1: float, y0: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


class _Frame:
    """One figure for charts of one shape: per department a stacked horizontal bar of its
    cases by bucket (first department on top), beside the tasks by state. Drawn for speed
    (twenty departments' leaders get one each, daily): the bars are one polygon collection
    per bucket (not a patch per bar, each re-fitting the limits), limits and ticks are set
    directly, titles sit at a fixed height (no layout pass to move them)."""

    def __init__(self, rows: int, states: int, *, font: str, dpi: int) -> None:
        from matplotlib.figure import Figure

        self.font, self.rows = font, rows
        self.height = 2.2 + 0.42 * rows  # inches: a fixed frame and a row per department
        fig = Figure(figsize=(8, self.height), dpi=dpi)
        self.fig, self.canvas = fig, FigureCanvasAgg(fig)
        self.title = fig.suptitle("", fontfamily=font)
        self.cases, self.tasks = fig.subplots(1, 2, width_ratios=(3, 1.4))
        self.buckets = [
            self.cases.add_collection(
                PolyCollection([], facecolors=colour, edgecolors="none", label=bucket)
            )
            for bucket, colour in zip(BUCKETS, COLOURS, strict=True)
        ]
        self.states = self.tasks.add_collection(
            PolyCollection([], facecolors="#6baed6", edgecolors="none")
        )
        self.cases.set_title("各部门案件", fontfamily=font, y=1.0)
        self.tasks.set_title("任务状态", fontfamily=font, y=1.0)
        fig.legend(
            prop={"family": font, "size": "small"}, ncols=4, frameon=False, loc="lower center"
        )
        # few value ticks and no marks on the labelled axes: less to lay out and draw
        self.cases.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        self.tasks.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        self.cases.tick_params(axis="y", length=0)
        self.tasks.tick_params(axis="x", length=0)
        self.cases.set_ylim(rows - 0.5, -0.5)
        self.tasks.set_xlim(-0.6, states - 0.4)

    def draw(self, data: ChartData) -> bytes:
        names = list(data.departments) or ["（暂无案件）"]
        self.title.set_text(f"双随机联合抽查日报 {data.day.isoformat()} · {data.scope}")
        # fixed margins in inches rather than tight_layout, which draws the figure twice
        longest = max(len(n) for n in names)
        self.fig.subplots_adjust(
            left=min(0.45, (0.3 + 0.14 * longest) / 8),
            right=0.98,
            top=1 - 0.75 / self.height,
            bottom=1.0 / self.height,
            wspace=0.25,
        )
        self._case_bars(names, data)
        self._task_bars(data)
        return _png(self.canvas)

    def _case_bars(self, names: list[str], data: ChartData) -> None:
        left = [0] * len(names)
        for bucket, bars in zip(BUCKETS, self.buckets, strict=True):
            values = [data.departments.get(n, Counter())[bucket] for n in names]
            bars.set_verts(
                [
                    _bar(x, x + v, i - 0.4, i + 0.4)
                    for i, (x, v) in enumerate(zip(left, values, strict=True))
                    if v
                ]
            )
            left = [a + b for a, b in zip(left, values, strict=True)]
        self.cases.set_xlim(0, max(max(left), 1) * 1.05)
        self.cases.set_yticks(range(len(names)), names, fontfamily=self.font)

    def _task_bars(self, data: ChartData) -> None:
        labels = list(data.tasks_by_state) or ["无"]
        counts = [data.tasks_by_state[x] for x in labels]
        self.states.set_verts([_bar(i - 0.4, i + 0.4, 0, c) for i, c in enumerate(counts) if c])
        self.tasks.set_ylim(0, max(max(counts), 1) * 1.05)
        self.tasks.set_xticks(range(len(labels)), labels, fontfamily=self.font, rotation=30)


def _png(canvas: FigureCanvasAgg) -> bytes:
    """Draw once and encode the pixels (savefig would lay the figure out again); lightly
    compressed (a few per cent larger), and without metadata, so the same figures give the
    same bytes."""
    from PIL import Image

    canvas.draw()  # type: ignore[no-untyped-call]
    width, height = canvas.get_width_height()
    rgba = canvas.buffer_rgba()  # type: ignore[no-untyped-call]
    pixels = Image.frombuffer("RGBA", (width, height), rgba, "raw", "RGBA", 0, 1)
    out = io.BytesIO()
    pixels.convert("RGB").save(out, format="PNG", compress_level=1)
    return out.getvalue()

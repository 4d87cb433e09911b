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
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.text import Text

from core.summary import BUCKETS, ChartData
from core.workdays import cn_date

log = logging.getLogger(__name__)

COLOURS = ("#9ecae1", "#fdae6b", "#e6550d", "#31a354")  # not yet due, this week, overdue, done
TASK_COLOUR = "#8c8c8c"  # grey: tasks are no case bucket, so no colour of the legend
GREY = "#444444"
# laid out in inches for a phone held upright: 6.4 in at 125 dpi is 800 px, and 15 pt text is
# 26 px, about 12 px high when a phone shows the picture full width (375 px)
DPI = 125
WIDTH_IN = 6.4
FONT_PT = 15
TOP_IN = 2.05  # title, date and scope, legend, the cases' heading
ROW_IN = 0.5  # per department
GAP_IN = 0.75  # with the tasks' heading
STATE_IN = 0.42  # per task state
BOTTOM_IN = 0.15
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


def render_charts(charts: list[ChartData], *, dpi: int = DPI) -> list[bytes | None]:
    """Each chart's PNG; all None when no CJK font is installed (logged once: install
    fonts-wqy-microhei), so the summaries go out as text alone. Charts of the same shape (as
    many departments and task states) are drawn on one figure, updated for each: building a
    figure costs as much as drawing it."""
    if not charts:  # nothing to draw wants no font
        return []
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


def render_chart(data: ChartData, *, dpi: int = DPI) -> bytes | None:
    """The PNG, or None when no CJK font is installed (logged: install fonts-wqy-microhei)."""
    return render_charts([data], dpi=dpi)[0]


def chart_height(rows: int, states: int) -> float:
    """Inches: the heading, a row per department, the tasks' heading and a row per state."""
    return TOP_IN + ROW_IN * rows + GAP_IN + STATE_IN * states + BOTTOM_IN


def _bar(x0: float, x1: float, y0: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _text_in(text: str) -> float:
    """Roughly how wide `text` is set in FONT_PT, in inches (CJK a full em, the rest half)."""
    ems = sum(1.0 if ord(c) > 0x2E80 else 0.55 for c in text)
    return ems * FONT_PT / 72


class _Frame:
    """One figure for charts of one shape, laid out for a phone held upright (a chat shows the
    picture about 360 px wide): the title over two lines, the legend under it, per department
    one stacked horizontal bar of its cases by bucket with its total and overdue count written
    at its end (most overdue first: what needs the leader), then the tasks by state as labelled
    bars. Drawn for speed (twenty departments' leaders get one each, daily): the bars are one
    polygon collection per bucket, axes are placed in inches and texts reused, so there is no
    layout pass and no tick machinery."""

    def __init__(self, rows: int, states: int, *, font: str, dpi: int) -> None:
        from matplotlib.figure import Figure

        self.font, self.rows, self.states = font, rows, states
        height = chart_height(rows, states)
        fig = Figure(figsize=(WIDTH_IN, height), dpi=dpi)
        self.fig, self.canvas, self.height = fig, FigureCanvasAgg(fig), height

        def y(inches_from_top: float) -> float:
            return 1 - inches_from_top / height

        def text(x: float, at: float, **kw: Any) -> Text:
            return fig.text(x, y(at), "", fontfamily=font, va="top", **kw)

        self.title = text(0.5, 0.12, ha="center", fontsize=FONT_PT + 3)
        self.subtitle = text(0.5, 0.58, ha="center", fontsize=FONT_PT, color=GREY)
        cases_top = TOP_IN
        tasks_top = TOP_IN + ROW_IN * rows + GAP_IN
        text(0.03, cases_top - 0.42, fontsize=FONT_PT).set_text("各部门案件（件）")
        text(0.03, tasks_top - 0.45, fontsize=FONT_PT).set_text("任务（个）")
        self.cases = fig.add_axes((0.3, y(cases_top + ROW_IN * rows), 0.68, ROW_IN * rows / height))
        self.tasks = fig.add_axes(
            (0.3, y(tasks_top + STATE_IN * states), 0.68, STATE_IN * states / height)
        )
        self.buckets = [
            PolyCollection([], facecolors=colour, edgecolors="none", label=bucket)
            for bucket, colour in zip(BUCKETS, COLOURS, strict=True)
        ]
        for bars in self.buckets:
            self.cases.add_collection(bars)
        self.states_bars = PolyCollection([], facecolors=TASK_COLOUR, edgecolors="none")
        self.tasks.add_collection(self.states_bars)
        fig.legend(
            handles=self.buckets,
            prop={"family": font, "size": FONT_PT - 1},
            ncols=4,
            frameon=False,
            loc="center",
            bbox_to_anchor=(0.5, y(1.2)),
            handlelength=1.0,
            columnspacing=1.0,
            handletextpad=0.4,
        )
        for ax, n in ((self.cases, rows), (self.tasks, states)):
            ax.set_ylim(n - 0.5, -0.5)  # first row on top
            ax.xaxis.set_visible(False)
            ax.tick_params(axis="y", length=0, labelsize=FONT_PT, pad=6)
            for side in ("top", "right", "bottom"):
                ax.spines[side].set_visible(False)
            ax.spines["left"].set_color(GREY)
        self.case_values = [
            self.cases.text(0, i, "", va="center", fontsize=FONT_PT - 1, fontfamily=font)
            for i in range(rows)
        ]
        self.task_values = [
            self.tasks.text(
                0, i, "", va="center", fontsize=FONT_PT - 1, color=GREY, fontfamily=font
            )
            for i in range(states)
        ]

    def draw(self, data: ChartData) -> bytes:
        names = list(data.departments) or ["暂无案件"]
        self.title.set_text("双随机联合抽查日报")
        self.subtitle.set_text(f"{cn_date(data.day)} · {data.scope}")
        states = list(data.tasks_by_state) or ["暂无任务"]
        longest = max(_text_in(n) for n in [*names, *states])
        left = min(0.5, (longest + 0.25) / WIDTH_IN)  # fixed margins: no layout pass
        width = 0.97 - left
        for ax in (self.cases, self.tasks):
            box = ax.get_position()
            ax.set_position((left, box.y0, width, box.height))
        self._case_bars(names, data, width * WIDTH_IN)
        self._task_bars(states, data, width * WIDTH_IN)
        return _png(self.canvas)

    def _case_bars(self, names: list[str], data: ChartData, axes_in: float) -> None:
        left = [0] * len(names)
        for bucket, bars in zip(BUCKETS, self.buckets, strict=True):
            values = [data.departments.get(n, Counter())[bucket] for n in names]
            bars.set_verts(
                [
                    _bar(x, x + v, i - 0.36, i + 0.36)
                    for i, (x, v) in enumerate(zip(left, values, strict=True))
                    if v
                ]
            )
            left = [a + b for a, b in zip(left, values, strict=True)]
        labels = []
        for name, total in zip(names, left, strict=True):
            overdue = data.departments.get(name, Counter())["已逾期"]
            text = f"{total} · 逾期 {overdue}" if overdue else str(total)
            labels.append((text if data.departments else "", overdue))
        xmax = _room(max(left), max(_text_in(t) for t, _ in labels), axes_in)
        self.cases.set_xlim(0, xmax)
        for label, (text, overdue), total in zip(self.case_values, labels, left, strict=True):
            label.set_text(text)
            label.set_x(total + xmax * 0.015)
            label.set_color(COLOURS[2] if overdue else GREY)
        self.cases.set_yticks(range(len(names)), names, fontfamily=self.font)

    def _task_bars(self, states: list[str], data: ChartData, axes_in: float) -> None:
        counts = [data.tasks_by_state[x] for x in states]
        self.states_bars.set_verts(
            [_bar(0, c, i - 0.32, i + 0.32) for i, c in enumerate(counts) if c]
        )
        xmax = _room(max(counts), _text_in(str(max(counts))), axes_in)
        self.tasks.set_xlim(0, xmax)
        for label, count in zip(self.task_values, counts, strict=True):
            label.set_text(str(count) if data.tasks_by_state else "")
            label.set_x(count + xmax * 0.015)
        self.tasks.set_yticks(range(len(states)), states, fontfamily=self.font)


def _room(largest: int, label_in: float, axes_in: float) -> float:
    """The axis' right end so the longest bar still leaves room for its label."""
    bars_in = max(axes_in - label_in - 0.15, axes_in * 0.35)
    return max(largest, 1) * axes_in / bars_in


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

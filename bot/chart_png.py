"""The budget chart (engine/charts.py) as a PNG: `headroom plan ... --chart budget.png`.

matplotlib is imported here only, when a picture is asked for (`headroom plan` without --chart
never loads it), and drawn through its Agg canvas on a fresh Figure: no pyplot, no global figure
state, so it is safe on worker threads. Each GPU is one stacked bar, bottom to top in the order
vLLM accounts for memory; a dashed line across each bar marks what vLLM may use.
"""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING, Any

from bot.render import Views
from engine.charts import PARTS, BudgetChart, budget_chart
from engine.plan import Plan

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure

#: one colour per part (weights, activation, runtime, KV cache, unused); exact, so tests can find them in pixels
COLOURS = ("#3b6ea8", "#e8a33d", "#8c6bb1", "#4aa564", "#d9d9d9")
MAY_USE_COLOUR = "#222222"
MISS_EDGE = "#c0392b"
SIZE_IN = (8.0, 4.5)
DPI = 100  # 800 x 450 pixels
HALF = 0.3  # half a bar's width, in bar slots


def budget_figure(chart: BudgetChart, views: Views) -> Figure:
    """One stacked bar per GPU shown, the 'may use' line across each; words from templates/charts.j2.

    Drawn as one collection of rectangles and one of lines (not a bar() call per part): a third of the time.
    """
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    words: Any = views.macros("charts.j2")
    fig = Figure(figsize=SIZE_IN, dpi=DPI)
    ax = fig.add_axes((0.08, 0.1, 0.9, 0.72))
    boxes, colours, lines = [], [], []
    for i, bar in enumerate(chart.bars):
        low = 0.0
        for part, colour in zip(PARTS, COLOURS, strict=True):
            high = low + bar.part(part)
            boxes.append([(i - HALF, low), (i + HALF, low), (i + HALF, high), (i - HALF, high)])
            colours.append(colour)
            low = high
        lines.append([(i - HALF * 1.2, bar.may_use), (i + HALF * 1.2, bar.may_use)])
        if bar.rejected:
            ax.add_patch(Rectangle((i - HALF, 0), 2 * HALF, low, fill=False, edgecolor=MISS_EDGE, linewidth=1.5))
    ax.add_collection(PolyCollection(boxes, facecolors=colours, linewidths=0, antialiaseds=False))
    ax.add_collection(LineCollection(lines, colors=MAY_USE_COLOUR, linestyles="dashed", linewidths=1.5))
    ceiling = chart.top * 1.12 or 1.0
    ax.set_xlim(-0.6, len(chart.bars) - 0.4)
    ax.set_ylim(0, ceiling)
    for i, bar in enumerate(chart.bars):
        if bar.stack > ceiling:  # weights far beyond the GPU: clipped, with the total written at the top
            ax.text(i, ceiling, str(words.beyond(bar.stack)), ha="center", va="top", fontsize=8, color=MISS_EDGE)
    ax.set_xticks(range(len(chart.bars)), [str(words.bar_label(b, b.rejected)) for b in chart.bars],
                  fontsize=8)  # fmt: skip
    ax.set_ylabel(words.budget_y)
    ax.spines[["top", "right"]].set_visible(False)
    handles: list[Artist] = [Line2D([], [], color=MAY_USE_COLOUR, linestyle="dashed", label=str(words.may_use))]
    handles += [Patch(color=c, label=str(words.parts[p])) for p, c in zip(PARTS, COLOURS, strict=True)]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=6, fontsize=8, frameon=False)
    fig.suptitle(words.budget_title, x=0.08, y=0.98, ha="left", fontsize=11)
    return fig


def png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def write_chart(target: str, plan: Plan, views: Views) -> bool:
    """Write the plan's budget chart to `target` ("-": standard output, and the answer's words then go to
    standard error, so that `headroom plan ... --chart - > budget.png` holds only the picture). False when
    the plan has no GPU to draw."""
    chart = budget_chart(plan)
    if chart is None:
        return False
    data = png(budget_figure(chart, views))
    if target == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        sys.stdout = sys.stderr  # the rest of this command's output (the answer) is words, not picture
    else:
        with open(target, "wb") as out:
            out.write(data)
    return True

"""The chart model (engine/charts.py) as Slack blocks: `data_visualization` charts, a `data_table` ranking,
and the same numbers as text for the layouts Slack falls back to.

Slack's bar chart groups series side by side (it has no stacked mode): each GPU is a group of the
budget's parts next to what vLLM may use. Every block built here passes bot/block_rules.py, so a
refusal (`invalid_blocks` while Slack rolls the blocks out, or an old client) is a rollout matter:
bot/posting.py then sends the layout with the table and these words instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.block_rules import LABEL_MAX, TITLE_MAX, check_block
from bot.render import Views
from engine.charts import PARTS, BudgetChart, CapacityCurve, Charts
from engine.plan import Candidate

#: the ranking's numeric columns (by position in templates/slack.j2 `columns`) and the number each sorts by
NUMBERS: dict[int, Callable[[Candidate], float | None]] = {
    4: lambda c: c.max_concurrency,
    5: lambda c: c.decode_tokens_per_s_per_user,
    6: lambda c: c.usd_per_hour,
    7: lambda c: c.usd_per_million_tokens,
}
PAGE_SIZE = 8


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _unique(labels: list[str]) -> list[str]:
    """Slack needs distinct categories of at most 20 characters: clip, then number any that collide."""
    found: list[str] = []
    for label in labels:
        short = _short(label, LABEL_MAX)
        n = 2
        while short in found:
            suffix = f" {n}"
            short, n = _short(label, LABEL_MAX - len(suffix)) + suffix, n + 1
        found.append(short)
    return found


def _finite(value: float | None) -> float | None:
    return round(value, 3) if value is not None and math.isfinite(value) else None


def _series(name: str, categories: list[str], values: list[float]) -> dict:
    data = [{"label": c, "value": round(_finite(v) or 0.0, 2)} for c, v in zip(categories, values, strict=True)]
    return {"name": _short(name, LABEL_MAX), "data": data}


@dataclass
class ChartParts:
    """What the answer's layouts add: charts (top rung), the data table, and the charts as text (lower rungs)."""

    charts: list[dict] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # mrkdwn, one paragraph per chart


class ChartBlocks:
    def __init__(self, views: Views) -> None:
        self.words: Any = views.macros("charts.j2")

    def budget(self, chart: BudgetChart) -> dict:
        w = self.words
        categories = _unique([str(w.bar_label(b, b.rejected)) for b in chart.bars])
        series = [_series(w.parts[p], categories, [b.part(p) for b in chart.bars]) for p in PARTS]
        series.append(_series(w.may_use, categories, [b.may_use for b in chart.bars]))
        axis = {"categories": categories, "x_label": w.budget_x, "y_label": w.budget_y}
        block = {"type": "data_visualization", "title": _short(w.budget_title, TITLE_MAX),
                 "chart": {"type": "bar", "series": series, "axis_config": axis}}  # fmt: skip
        check_block(block)
        return block

    def curve(self, curve: CapacityCurve) -> dict:
        w = self.words
        points = curve.points
        categories = _unique([str(w.context_label(p.context, p.context == curve.asked_context)) for p in points])
        series = [_series(w.curve_series, categories, [p.requests for p in points])]
        if curve.asked_load:
            series.append(_series(w.load_series, categories, [float(curve.asked_load)] * len(points)))
        axis = {"categories": categories, "x_label": w.curve_x, "y_label": w.curve_y}
        title = _short(str(w.curve_title(curve.candidate)), TITLE_MAX)
        block = {"type": "data_visualization", "title": title,
                 "chart": {"type": "line", "series": series, "axis_config": axis}}  # fmt: skip
        check_block(block)
        return block

    def table(self, header: list[str], rows: list[tuple[Candidate, list[str]]]) -> dict | None:
        """The ranking as a data_table (sortable numbers, pages); None without a pick (Slack needs a row)."""
        if not rows:
            return None
        cells = [[{"type": "raw_text", "text": h} for h in header]]
        for c, texts in rows:
            row: list[dict] = []
            for i, text in enumerate(texts):
                number = _finite(NUMBERS[i](c)) if i in NUMBERS else None
                cell = {"type": "raw_number", "value": number, "text": text} if number is not None else None
                row.append(cell or {"type": "raw_text", "text": text or "—"})
            cells.append(row)
        block = {"type": "data_table", "caption": str(self.words.table_caption), "rows": cells,
                 "page_size": min(PAGE_SIZE, len(rows))}  # fmt: skip
        check_block(block)
        return block

    def parts(self, charts: Charts, header: list[str], rows: list[tuple[Candidate, list[str]]]) -> ChartParts:
        """Every block the charts add to an answer, built and checked once."""
        found = ChartParts()
        if charts.budget is not None:
            found.charts.append(self.budget(charts.budget))
            found.text.append(str(self.words.budget_text(charts.budget)).strip())
        if charts.curve is not None:
            found.charts.append(self.curve(charts.curve))
            found.text.append(str(self.words.curve_text(charts.curve)).strip())
        table = self.table(header, rows) if found.charts else None
        found.table = [table] if table else []
        return found

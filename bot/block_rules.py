"""Slack's rules for the blocks slack_sdk does not model yet: `data_visualization` and `data_table`.

Written from Slack's block reference (docs.slack.dev/reference/block-kit/blocks/data-visualization-block
and .../data-table-block): required fields, types, counts and lengths. Every chart and data table
the bot builds passes `check_block` before it is sent, and `check_message` holds the per-message
rule (at most two charts), so a refusal from Slack means a rollout or an old client, not our payload.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

TITLE_MAX = 50  # data_visualization.title
LABEL_MAX = 20  # series names, categories, point labels, pie segment labels
AXIS_TITLE_MAX = 50  # axis_config.x_label / y_label
SERIES_MAX = 6  # series of a bar / line / area chart; segments of a pie
POINTS_MAX = 20  # points per series, one per category
CHARTS_PER_MESSAGE = 2
BLOCK_ID_MAX = 255
CHART_TYPES = frozenset({"bar", "line", "area", "pie"})
TABLE_ROWS = (2, 101)  # header + 1 .. header + 100
TABLE_COLUMNS = (1, 20)
TABLE_PAGE_SIZE = (1, 100)
TABLE_CHARACTERS = 10_000  # across the cells of one table (and of one message)
CELL_TYPES = frozenset({"raw_text", "raw_number", "rich_text"})
RICH_BLOCKS = frozenset({"data_visualization", "data_table"})


class BlockRuleError(ValueError):
    """A block Slack would refuse, with the rule it breaks."""


def _need(ok: bool, problem: str) -> None:
    if not ok:
        raise BlockRuleError(problem)


def _text(value: object, what: str, limit: int) -> None:
    _need(isinstance(value, str) and 0 < len(value) <= limit, f"{what} must be 1-{limit} characters")


def _list(value: object, what: str, low: int, high: int) -> list:
    if not isinstance(value, list) or not low <= len(value) <= high:
        raise BlockRuleError(f"{what}: {low}-{high} items")
    return value


def _number(value: object) -> bool:
    """A JSON number: NaN and infinities are not (json.dumps would write NaN / Infinity)."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _common(block: dict, allowed: set[str]) -> None:
    unknown = set(block) - allowed
    _need(not unknown, f"{block.get('type')} has unknown fields {sorted(unknown)}")
    if "block_id" in block:
        _text(block["block_id"], "block_id", BLOCK_ID_MAX)


def check_chart(block: dict) -> None:
    """One data_visualization block: title, chart type, series and their points against the categories."""
    _need(block.get("type") == "data_visualization", "type must be data_visualization")
    _common(block, {"type", "title", "chart", "block_id"})
    _text(block.get("title"), "title", TITLE_MAX)
    chart = block.get("chart")
    if not isinstance(chart, dict) or chart.get("type") not in CHART_TYPES:
        raise BlockRuleError("chart.type must be bar, line, area or pie")
    if chart["type"] == "pie":
        for s in _list(chart.get("segments"), "pie segments", 1, SERIES_MAX):
            _text(s.get("label"), "segment label", LABEL_MAX)
            _need(_number(s.get("value")) and s["value"] > 0, "segment value must be a number above 0")
        return
    axis = chart.get("axis_config")
    if not isinstance(axis, dict):
        raise BlockRuleError("axis_config is required")
    categories = _list(axis.get("categories"), "axis_config.categories", 1, POINTS_MAX)
    for c in categories:
        _text(c, "category", LABEL_MAX)
    _need(len(set(categories)) == len(categories), "categories must be unique")
    for key in ("x_label", "y_label"):
        if key in axis:
            _text(axis[key], f"axis_config.{key}", AXIS_TITLE_MAX)
    series = _list(chart.get("series"), "series", 1, SERIES_MAX)
    names = [s.get("name") for s in series]
    for name in names:
        _text(name, "series name", LABEL_MAX)
    _need(len(set(names)) == len(names), "series names must be unique")
    for s in series:
        points = _list(s.get("data"), f"series {s['name']!r} data", 1, POINTS_MAX)
        labels = [p.get("label") for p in points]
        _need(sorted(labels) == sorted(categories), f"series {s['name']!r} needs one point per category")
        _need(all(_number(p.get("value")) for p in points), f"series {s['name']!r} has a value that is not a number")


def check_table(block: dict) -> None:
    """One data_table block: caption, 2-101 rows of equal length, a plain header, page size, characters."""
    _need(block.get("type") == "data_table", "type must be data_table")
    _common(block, {"type", "rows", "caption", "page_size", "row_header_column_index", "block_id"})
    _need(isinstance(block.get("caption"), str) and block["caption"].strip() != "", "caption is required")
    rows = _list(block.get("rows"), "data table rows", *TABLE_ROWS)
    width = len(rows[0])
    _need(TABLE_COLUMNS[0] <= width <= TABLE_COLUMNS[1], "a data table has 1-20 columns")
    _need(all(len(row) == width for row in rows), "every row needs the same number of cells")
    _need(all(cell.get("type") != "rich_text" for cell in rows[0]), "header cells cannot be rich_text")
    characters = 0
    for row in rows:
        for cell in row:
            kind = cell.get("type")
            _need(kind in CELL_TYPES, f"cell type {kind!r}")
            if kind == "raw_text":
                _text(cell.get("text"), "raw_text cell", TABLE_CHARACTERS)
            if kind == "raw_number":
                _need(_number(cell.get("value")), "raw_number cell needs a numeric value")
            characters += len(str(cell.get("text", cell.get("value", ""))))
    _need(characters <= TABLE_CHARACTERS, f"{characters} characters in the table's cells, over {TABLE_CHARACTERS}")
    if "page_size" in block:
        size = block["page_size"]
        _need(isinstance(size, int) and TABLE_PAGE_SIZE[0] <= size <= TABLE_PAGE_SIZE[1], "page_size is 1-100")
    if "row_header_column_index" in block:
        index = block["row_header_column_index"]
        _need(isinstance(index, int) and 0 <= index < width, "row_header_column_index names a column")


def check_block(block: dict) -> None:
    (check_chart if block.get("type") == "data_visualization" else check_table)(block)


def check_message(blocks: Sequence[dict]) -> None:
    """Each chart and data table, and at most two charts and one table-like block in the message."""
    charts = sum(1 for b in blocks if b.get("type") == "data_visualization")
    _need(charts <= CHARTS_PER_MESSAGE, f"{charts} charts in one message, over {CHARTS_PER_MESSAGE}")
    tables = sum(1 for b in blocks if b.get("type") in {"table", "data_table"})
    _need(tables <= 1, "one table per message")
    for block in blocks:
        if block.get("type") in RICH_BLOCKS:
            check_block(block)

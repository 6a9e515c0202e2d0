"""Issue 15: the chart model (engine/charts.py), its Slack blocks, and Slack's written rules for them."""

from __future__ import annotations

import copy

import pytest

from bot.block_rules import BlockRuleError, check_chart, check_message, check_table
from bot.blocks import BlockLimitError, SlackViews, check_limits
from bot.chart_blocks import _unique
from engine.catalog.loader import Catalog
from engine.charts import PARTS, budget_chart, capacity_curve, charts_for, wants_curve
from engine.notes import note
from engine.service import respond
from tests.support import SAMPLE_ASKS, VIEWS

SLACK = SlackViews(VIEWS)
ASKS = [*SAMPLE_ASKS, "llama 3.1 8b on 8x rtx pro 6000"]


@pytest.mark.parametrize("text", ASKS)
def test_every_answer_carries_a_valid_budget_chart_and_its_words(catalog: Catalog, text: str) -> None:
    turn = respond(text, None, catalog)
    assert turn.plan is not None and turn.request is not None
    message = SLACK.answer(turn.plan, turn.request, charts=charts_for(turn.plan, turn.request, catalog))
    assert message.chart_blocks is not None
    check_limits(message.chart_blocks)  # deep: slack_sdk's models for the known blocks, block_rules for the new
    (chart,) = [b for b in message.chart_blocks if b["type"] == "data_visualization"]
    check_chart(chart)
    chart_model = budget_chart(turn.plan)
    assert chart_model is not None
    assert len(chart["chart"]["axis_config"]["categories"]) == len(chart_model.bars)
    words = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert any(w.startswith("*Memory per GPU (GiB)*") for w in words)  # the text fallback, in the table layout
    assert not any(b["type"] in {"data_visualization", "data_table"} for b in message.blocks + message.fallback_blocks)


def test_the_budget_parts_add_up_to_the_gpu_and_vllm_may_use_its_share(catalog: Catalog) -> None:
    turn = respond("llama 3.3 70b fp8 8k context", None, catalog)
    assert turn.plan is not None
    chart = budget_chart(turn.plan)
    assert chart is not None and [b.rejected for b in chart.bars] == [False, False, False, True]
    for bar in chart.bars[:-1]:
        assert sum(bar.part(p) for p in PARTS) == pytest.approx(bar.memory, abs=1e-6)
        assert bar.may_use == pytest.approx(0.92 * bar.memory)
        assert bar.over == 0
    miss = chart.bars[-1]
    short = [c for c in turn.plan.candidates if not c.feasible and c.weights_gib_per_gpu > 0
             and (c.verdict == "no_kv_room" or c.kv_cache_gib_per_gpu <= 0)]  # rejected for memory, not for a kernel
    near = [c for c in short if c.weights_gib_per_gpu <= c.gpu_memory_gib]
    if near:
        assert miss.usd_per_hour == min(c.usd_per_hour for c in near if c.usd_per_hour)  # the cheapest near miss
    else:  # none holds the weights: the closest
        closest = min(c.weights_gib_per_gpu / c.gpu_memory_gib for c in short)
        assert miss.weights / next(c.gpu_memory_gib for c in short if c.instance == miss.instance) == pytest.approx(closest)
        near = short
    (rejected,) = [c for c in near if c.instance == miss.instance]
    assert miss.weights == pytest.approx(rejected.weights_gib_per_gpu)
    if miss.kv_cache:  # a KV pool smaller than one request: the parts still fill the GPU
        assert rejected.verdict == "no_kv_room" and miss.over == 0
        assert miss.kv_cache == pytest.approx(rejected.kv_cache_gib_per_gpu)
        assert sum(miss.part(p) for p in PARTS) == pytest.approx(miss.memory, abs=1e-6)
    else:  # no pool at all: the bar says by how much the rest overshoots what vLLM may use
        assert miss.over == pytest.approx(miss.weights + miss.activation + miss.runtime - miss.may_use)


def test_the_capacity_curve_meets_the_answer_at_the_asked_context_and_falls_with_length(catalog: Catalog) -> None:
    first = respond("llama 3.3 70b fp8 8k context 4 users", None, catalog)
    turn = respond("what about 32k?", first.memory, catalog)
    assert turn.plan is not None and turn.request is not None and turn.plan.top is not None
    assert wants_curve(turn.changes) and not wants_curve([note("weights", old=1.0, new=2.0)])
    assert wants_curve([note("field", field="concurrency", old=1, new=8)])
    curve = charts_for(turn.plan, turn.request, catalog, turn.changes).curve
    assert curve is not None and curve.asked_load == 4
    asked = next(p for p in curve.points if p.context == 32768)
    assert asked.requests == pytest.approx(turn.plan.top.max_concurrency)
    values = [p.requests for p in curve.points]
    assert values == sorted(values, reverse=True) and len(values) <= 20
    assert charts_for(first.plan, first.request, catalog, None).curve is None  # a first answer: the budget only
    none_fits = respond("405b bf16 on 1x l4", None, catalog)
    assert none_fits.plan is not None and none_fits.request is not None
    assert capacity_curve(none_fits.plan, none_fits.request, catalog) is None


def test_the_follow_up_blocks_carry_two_charts_and_stay_within_every_limit(catalog: Catalog) -> None:
    first = respond("llama 3.3 70b fp8 8k context", None, catalog)
    turn = respond("what about 128k?", first.memory, catalog)
    assert turn.plan is not None and turn.request is not None
    charts = charts_for(turn.plan, turn.request, catalog, turn.changes)
    message = SLACK.answer(turn.plan, turn.request, turn.changes, charts=charts)
    assert message.chart_blocks is not None
    check_limits(message.chart_blocks)
    kinds = [b["chart"]["type"] for b in message.chart_blocks if b["type"] == "data_visualization"]
    assert kinds == ["bar", "line"]
    line = message.chart_blocks[[b["type"] for b in message.chart_blocks].index("data_visualization") + 1]
    assert "128k (asked)" in line["chart"]["axis_config"]["categories"]


def _bar_block() -> dict:
    data = [{"label": "a", "value": 1.0}, {"label": "b", "value": 2.5}]
    return {"type": "data_visualization", "title": "t",
            "chart": {"type": "bar", "series": [{"name": "s", "data": data}],
                      "axis_config": {"categories": ["a", "b"], "y_label": "GiB"}}}  # fmt: skip


def _table_block() -> dict:
    return {"type": "data_table", "caption": "c", "page_size": 5,
            "rows": [[{"type": "raw_text", "text": "h"}], [{"type": "raw_number", "value": 1, "text": "1"}]]}  # fmt: skip


def _broken(base: dict, path: tuple, value: object) -> dict:
    block = copy.deepcopy(base)
    target = block
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return block


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("title",), "x" * 51),
        (("title",), ""),
        (("chart", "type"), "scatter"),
        (("chart", "axis_config", "categories"), ["a", "b" * 21]),
        (("chart", "axis_config", "categories"), ["a", "a"]),
        (("chart", "axis_config", "y_label"), "y" * 51),
        (("chart", "series"), [{"name": f"s{i}", "data": [{"label": "a", "value": 1}, {"label": "b", "value": 1}]}
                               for i in range(7)]),  # fmt: skip
        (("chart", "series", 0, "name"), "n" * 21),
        (("chart", "series", 0, "data"), [{"label": "a", "value": 1.0}]),  # a category without a point
        (("chart", "series", 0, "data", 1, "label"), "c"),  # a point outside the categories
        (("chart", "series", 0, "data", 1, "value"), "2.5"),
        (("chart", "series", 0, "data", 1, "value"), float("nan")),
        (("chart", "series", 0, "data", 1, "value"), float("inf")),
        (("surprise",), 1),
    ],
)
def test_the_chart_rules_refuse_what_slack_refuses(path: tuple, value: object) -> None:
    check_chart(_bar_block())
    with pytest.raises(BlockRuleError):
        check_chart(_broken(_bar_block(), path, value))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("caption",), ""),
        (("rows",), [[{"type": "raw_text", "text": "h"}]]),  # a header alone
        (("rows",), [[{"type": "raw_text", "text": "h"}]] * 102),
        (("rows", 1), [{"type": "raw_text", "text": "1"}, {"type": "raw_text", "text": "2"}]),  # uneven
        (("rows", 0, 0), {"type": "rich_text", "elements": []}),  # a rich header cell
        (("rows", 1, 0), {"type": "raw_number", "value": "1"}),
        (("page_size",), 0),
        (("page_size",), 101),
    ],
)
def test_the_data_table_rules_refuse_what_slack_refuses(path: tuple, value: object) -> None:
    check_table(_table_block())
    with pytest.raises(BlockRuleError):
        check_table(_broken(_table_block(), path, value))


def test_a_message_holds_at_most_two_charts_and_one_table() -> None:
    check_message([_bar_block(), _bar_block(), _table_block()])
    with pytest.raises(BlockRuleError):
        check_message([_bar_block(), _bar_block(), _bar_block()])
    with pytest.raises(BlockRuleError):
        check_message([_table_block(), {"type": "table", "rows": []}])
    with pytest.raises(BlockLimitError):
        check_limits([_broken(_bar_block(), ("title",), "x" * 60)])


def test_long_or_repeated_names_become_distinct_categories_of_twenty_characters() -> None:
    names = _unique(["8 × RTX PRO 6000 Blackwell", "8 × RTX PRO 6000 Blackwell ✗", "g6e.xlarge", "g6e.xlarge"])
    assert all(len(n) <= 20 for n in names) and len(set(names)) == 4
    assert names[2:] == ["g6e.xlarge", "g6e.xlarge 2"]


def test_a_near_miss_with_no_kv_pool_shows_how_far_over_it_is(catalog: Catalog) -> None:
    # the cheapest near miss (one L40S) has no pool at all once vLLM may use only 88 % of it
    turn = respond("qwen2.5 72b awq 32k gpu memory utilization 0.88", None, catalog)
    chart = budget_chart(turn.plan) if turn.plan else None
    assert chart is not None and chart.bars[-1].rejected
    miss = chart.bars[-1]
    assert miss.kv_cache == 0 and miss.over > 0 and miss.weights < miss.memory
    assert miss.over == pytest.approx(miss.weights + miss.activation + miss.runtime - miss.may_use)

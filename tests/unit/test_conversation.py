"""Thread follow-ups: each changes exactly what it names; everything else carries over."""

from __future__ import annotations

import pytest

from engine.catalog.loader import Catalog
from engine.conversation import changes, follow_up
from engine.parse import ParseError, parse_request
from engine.ranking import plan

# (follow-up, the fields it must change and to what)
CONVERSATION: list[tuple[str, dict]] = [
    ("what about 32k?", {"context_tokens": 32768}),
    ("32k", {}),  # already 32k: nothing changes
    ("int4 instead", {"weights": "int4"}),
    ("with fp8 kv", {"kv_dtype": "fp8"}),
    ("64 users", {"concurrency": 64}),
    ("only g6e", {"families": ("g6e",)}),
    ("exclude p5", {"exclude_families": ("p5",)}),
    ("also exclude p4d", {"exclude_families": ("p5", "p4d")}),
    ("fastest?", {"sort": "speed"}),
    ("cheapest?", {"sort": "cost"}),
    ("why not g6e.12xlarge?", {"why_not": "g6e.12xlarge"}),
    ("on g7e.12xlarge", {"instance": "g7e.12xlarge", "families": (), "why_not": None}),
    ("under $20/h", {"max_usd_per_hour": 20.0}),
    ("ttft under 2s", {"max_ttft_s": 2.0}),
    ("2k in 512 out", {"input_tokens": 2048, "output_tokens": 512}),
    ("vllm 0.19", {"vllm_version": "0.19"}),
    ("what about qwen3 32b?", {"model": "Qwen/Qwen3-32B"}),
]


def test_each_follow_up_changes_exactly_what_it_names(catalog: Catalog) -> None:
    request = parse_request("llama 3.3 70b fp8 8k context", catalog)
    for text, expected in CONVERSATION:
        before = request.model_dump()
        request = follow_up(text, request, None, catalog)
        after = request.model_dump()
        changed = {k: after[k] for k in after if after[k] != before[k]}
        assert changed == expected, text
    assert len(CONVERSATION) >= 10


def test_compare_with_adds_the_previous_top_pick(catalog: Catalog) -> None:
    request = parse_request("llama 3.3 70b fp8 8k", catalog)
    top = plan(request, catalog).top
    following = follow_up("compare with g6e.12xlarge", request, top.instance, catalog)
    assert following.compare == (top.instance, "g6e.12xlarge")
    compared = plan(following, catalog)
    assert {c.instance for c in compared.candidates} == {top.instance, "g6e.12xlarge"}


def test_start_over_begins_a_new_request(catalog: Catalog) -> None:
    request = parse_request("llama 3.3 70b fp8 8k 16 users only g6e", catalog)
    fresh = follow_up("start over: qwen3 32b", request, None, catalog)
    assert fresh == parse_request("qwen3 32b", catalog)
    with pytest.raises(ParseError, match="which model"):
        follow_up("start over", request, None, catalog)


def test_nonsense_follow_up_is_a_parse_error_and_keeps_the_thread(catalog: Catalog) -> None:
    request = parse_request("llama 3.3 70b fp8 8k", catalog)
    with pytest.raises(ParseError, match="what to change"):
        follow_up("purple monkey dishwasher", request, None, catalog)


def test_changes_say_what_moved_in_the_answer(catalog: Catalog) -> None:
    first = plan(parse_request("llama 3.3 70b fp8 8k", catalog), catalog)
    second = plan(follow_up("what about 32k?", parse_request("llama 3.3 70b fp8 8k", catalog), None, catalog), catalog)
    lines = changes(first, second)
    assert "context: 8,192 → 32,768" in lines
    assert "KV per request: 2.50 → 10.00 GiB" in lines

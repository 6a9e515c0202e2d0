"""Thread follow-ups through the conversation service: each changes exactly what it names."""

from __future__ import annotations

from engine.catalog.loader import Catalog
from engine.parse import parse_request
from engine.ranking import plan
from engine.service import Memory, respond
from tests.support import VIEWS, words

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
    turn = respond("llama 3.3 70b fp8 8k context", None, catalog)
    for text, expected in CONVERSATION:
        before = turn.memory.request._asdict()
        turn = respond(text, turn.memory, catalog)
        assert turn.kind == "answer", (text, turn.error)
        after = turn.memory.request._asdict()
        changed = {k: after[k] for k in after if after[k] != before[k]}
        assert changed == expected, text
        assert turn.changes is not None  # a follow-up always says what changed (possibly nothing)
    assert len(CONVERSATION) >= 10


def test_compare_with_adds_the_previous_top_pick(catalog: Catalog) -> None:
    first = respond("llama 3.3 70b fp8 8k", None, catalog)
    top = first.plan.top.instance
    following = respond("compare with g6e.12xlarge", first.memory, catalog)
    assert following.request.compare == (top, "g6e.12xlarge")
    assert {c.instance for c in following.plan.candidates} == {top, "g6e.12xlarge"}


def test_start_over_begins_a_new_request(catalog: Catalog) -> None:
    first = respond("llama 3.3 70b fp8 8k 16 users only g6e", None, catalog)
    fresh = respond("start over: qwen3 32b", first.memory, catalog)
    assert fresh.request == parse_request("qwen3 32b", catalog)
    assert fresh.changes is None or fresh.changes  # a new question, not a diff of nothing
    reset = respond("start over", first.memory, catalog)
    assert (reset.kind, reset.memory) == ("reset", Memory())
    assert "which model" in VIEWS.error(reset.error)
    assert respond("what about 32k?", reset.memory, catalog).kind == "error"  # nothing to follow up on now


def test_nonsense_follow_up_is_an_error_and_keeps_the_thread(catalog: Catalog) -> None:
    first = respond("llama 3.3 70b fp8 8k", None, catalog)
    turn = respond("purple monkey dishwasher", first.memory, catalog)
    assert (turn.kind, turn.memory, turn.error.code) == ("error", None, "nothing_to_change")
    assert "what to change" in VIEWS.error(turn.error) and "purple monkey dishwasher" in VIEWS.error(turn.error)


def test_a_first_message_without_a_model_says_which_words_were_not_understood(catalog: Catalog) -> None:
    turn = respond("lamma fp8 8k 16 users", None, catalog)
    assert turn.error.code == "no_model" and turn.error.unknown == ["lamma"]
    assert turn.error.understood == {"weights": "fp8", "context_tokens": 8192, "concurrency": 16}


def test_help_words_get_help(catalog: Catalog) -> None:
    assert respond("help", None, catalog).kind == "help"
    assert respond("  ", None, catalog).kind == "help"


def test_changes_say_what_moved_in_the_answer(catalog: Catalog) -> None:
    first = respond("llama 3.3 70b fp8 8k", None, catalog)
    second = respond("what about 32k?", first.memory, catalog)
    lines = [words(n) for n in second.changes]
    assert "context: 8,192 → 32,768" in lines
    assert "KV per request: 2.50 → 10.00 GiB" in lines
    assert second.plan == plan(second.request, catalog) or second.plan.request == plan(second.request, catalog).request


def test_chatter_in_a_thread_is_quiet_unless_said_to_headroom(catalog: Catalog) -> None:
    first = respond("llama 3.3 70b fp8 8k", None, catalog)
    for text in ("thanks, that's really helpful!", "lol", "ok", "what do you think?"):
        assert respond(text, first.memory, catalog, addressed=False).kind == "chatter", text
    assert respond("purple monkey dishwasher", first.memory, catalog).kind == "error"  # said to headroom
    follow = respond("what about 32k?", first.memory, catalog, addressed=False)  # a real follow-up still counts
    assert follow.kind == "answer" and follow.request.context_tokens == 32768

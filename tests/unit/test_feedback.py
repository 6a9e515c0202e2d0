"""Feedback's parts without Slack: what clicks and forms carry back, what is stored, how a record exports."""

from __future__ import annotations

import asyncio
import csv
import io
import json

from bot.feedback import Answered, FeedbackRecord, LogFigures, Suggested, fit_form, form_answers, read_carried, thanks
from bot.feedback_export import records, row, write_csv
from bot.settings import Settings
from bot.state import BotState
from bot.store import MemoryStore
from engine.paste_reader import read_paste
from engine.request import Request
from engine.service import Memory
from tests.support import VIEWS

LOG = """INFO 07-01 10:00:00 [core.py:60] Initializing a V1 LLM engine (v0.10.1) with config: model='meta-llama/Llama-3.1-8B-Instruct'
INFO 07-01 10:00:05 [gpu_model_runner.py:1595] Model loading took 14.99 GiB and 11.2 seconds
INFO 07-01 10:00:30 [gpu_worker.py:240] Available KV cache memory: 53.29 GiB
INFO 07-01 10:00:30 [kv_cache_utils.py:716] GPU KV cache size: 436,560 tokens
INFO 07-01 10:00:30 [kv_cache_utils.py:720] Maximum concurrency for 8,192 tokens per request: 53.29x
"""


def test_only_values_headroom_wrote_are_read_back() -> None:
    good = json.dumps({"r": {"model": "llama-3.1-8b"}, "t": {"instance": "g6.xlarge"}, "v": "up"})
    assert read_carried(good) is not None and read_carried(good).t.instance == "g6.xlarge"  # type: ignore[union-attr]
    deep = json.dumps({"r": {"model": "x", "families": [[[[[["a"]]]]]]}})
    for bad in (None, 7, "", "[]", "{", good + " " * 2000, deep, json.dumps({"r": {"model": "x"}, "v": "meh"}),
                json.dumps({"r": {"model": "x"}, "extra": 1}), "[" * 1500 + "]" * 1500):  # fmt: skip
        assert read_carried(bad) is None, bad


def test_a_form_reads_only_well_formed_answers() -> None:
    values = {"outcome": {"value": {"selected_option": {"value": "oom"}}}, "held": {"value": {"value": "12"}},
              "log": {"value": {"value": "x" * 5000}}}  # fmt: skip
    assert form_answers({"state": {"values": values}}) == ("oom", 12, "x" * 3000)
    junk = {"outcome": {"value": {"selected_option": {"value": "exploded"}}}, "held": {"value": {"value": "12abc"}},
            "log": {"value": {"value": ["not", "text"]}}}  # fmt: skip
    assert form_answers({"state": {"values": junk}}) == ("", None, "")
    assert form_answers({"state": "nope"}) == ("", None, "") == form_answers({})
    for odd in ("²", "١٢", "12\u00b3", "𝟗"):  # str.isdigit() is True for these, int() fails or reads another script
        typed = {"held": {"value": {"value": odd}}}
        assert form_answers({"state": {"values": typed}}) == ("", None, "")


def test_feedback_is_one_record_per_person_answer_and_kind() -> None:
    state = BotState(MemoryStore(), Settings())

    async def scenario() -> list[str]:
        await state.save_feedback(("thumbs", "U1", "C1", "1.0"), "first")
        await state.save_feedback(("thumbs", "U1", "C1", "1.0"), "changed mind")
        await state.save_feedback(("thumbs", "U2", "C1", "1.0"), "another person")
        return sorted(await state.feedback())

    assert asyncio.run(scenario()) == ["another person", "changed mind"]


def test_a_channels_last_request_is_kept_and_forgotten_with_its_workspace() -> None:
    state = BotState(MemoryStore(), Settings())
    request = Request(model="Qwen/Qwen2.5-72B-Instruct", concurrency=20)

    async def scenario() -> tuple[Request | None, Request | None, Request | None]:
        await state.save_thread("T1", "C1", "1.0", Memory(request, "g6e.12xlarge"))
        await state.save_thread("T1", "C1", "2.0", Memory())  # "start over" keeps the last sized request
        kept, other = await state.last_request("T1", "C1"), await state.last_request("T2", "C1")
        await state.forget_team("T1")
        return kept, other, await state.last_request("T1", "C1")

    assert asyncio.run(scenario()) == (request, None, None)


def test_an_exported_row_takes_the_logs_figures_and_the_suggestion() -> None:
    reading = read_paste(LOG)
    record = FeedbackRecord.now(
        kind="outcome", value="fits", held=40, request={"model": "meta-llama/Llama-3.1-8B-Instruct", "weights": "bf16"},
        suggested=Suggested(instance="p5.4xlarge", gpu="NVIDIA H100 80GB", gpus=1, gpu_mem_gib=79.1, tp=1, pp=1,
                            gpu_mem_util=0.9),
        log=LogFigures.of(reading), digest="abc:def",
    )  # fmt: skip
    cells = row(record, "note")
    assert cells["engine_version"] == "0.10.1" and cells["weights_gib"] == "14.99" and cells["kv_cache_gib"] == "53.29"
    assert cells["kv_tokens"] == "436560" and cells["max_concurrency"] == "53.29" and cells["max_model_len"] == "8192"
    assert cells["gpu"] == "NVIDIA H100 80GB" and cells["tp"] == "1" and cells["gpu_mem_util"] == "0.9"
    assert cells["verdict"] == "fits" and cells["requests_held"] == "40" and cells["instance"] == "p5.4xlarge"
    assert cells["activation_peak_gib"] == "" and cells["log_kind"] == "healthy_startup"
    found, skipped = records([record.model_dump_json(), "not json", json.dumps({"kind": "thumbs"})])
    assert found == [record] and skipped == 2
    out = io.StringIO()
    write_csv(found, out, VIEWS.macros("assistant.j2").export_note)
    (exported,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert exported["notes"] == "from Slack feedback: it started and served; held 40 requests at once"


def test_user_text_in_the_fit_form_is_shown_not_interpreted() -> None:
    answered = Answered(r=Request(model="acme/x"), t=Suggested(instance="<!channel> <https://evil|p5> & co"))
    words = VIEWS.macros("assistant.j2")
    intro = fit_form(words, answered, "<@U123> *x*", "{}")["blocks"][0]["text"]["text"]
    assert "&lt;@U123&gt;" in intro and "&lt;!channel&gt; &lt;https://evil|p5&gt; &amp; co" in intro
    assert "<@" not in intro and "<!" not in intro and "<http" not in intro
    said = thanks(words, answered, ("fits", 3, ""))["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt;" in said and "<!channel>" not in said


def test_exported_cells_are_never_spreadsheet_formulas() -> None:
    record = FeedbackRecord.now(
        kind="outcome", value="fits", held=None, request={"model": "=HYPERLINK(\"http://x\")", "weights": "+bf16"},
        suggested=Suggested(instance="@SUM(A1)", gpu="-2+3", gpus=1), log=None, digest="abc:def",
    )  # fmt: skip
    cells = row(record, "=cmd|' /C calc'!A0")
    assert cells["model"] == "'=HYPERLINK(\"http://x\")" and cells["weights_dtype"] == "'+bf16"
    assert cells["instance"] == "'@SUM(A1)" and cells["gpu"] == "'-2+3" and cells["notes"] == "'=cmd|' /C calc'!A0"
    assert cells["gpus"] == "1" and cells["feedback"] == "outcome"  # numbers and plain words as they were

"""Feedback on answers end to end: 👍/👎 and "Did it fit?" clicked in (fake) Slack, stored in real Redis,
counted in /metrics, and exported by `headroom feedback export` as calibration-shaped CSV rows."""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis

from bot.cli import main
from bot.feedback_export import CALIBRATION_COLUMNS
from tests.integration.conftest import Bot, hook_id, new_ts, unique_channel
from tests.integration.servers import RedisProcess, wait_until

CALIBRATION = Path(__file__).parents[1] / "calibration" / "vllm_memory.csv"
OOM_LOG = """INFO 07-01 10:00:00 [__init__.py:239] Automatically detected platform cuda.
INFO 07-01 10:00:05 [gpu_model_runner.py:1595] Model loading took 67.72 GiB and 41.2 seconds
INFO 07-01 10:00:30 [gpu_worker.py:240] Available KV cache memory: 1.20 GiB
ValueError: To serve at least one request with the models's max seq len (8192), (2.50 GiB KV cache is needed, which is larger than the available KV cache memory (1.20 GiB). Based on the available memory, the estimated maximum model length is 3920. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.
"""


@pytest.fixture(autouse=True)
def every_payload_within_slack_limits(bot: Bot) -> Iterator[None]:
    yield
    assert bot.slack.block_errors == []


def answered(bot: Bot, text: str = "<@UHEADROOM> llama 3.3 70b fp8 8k context") -> tuple[str, dict]:
    """A mention answered in a fresh channel: (channel, the posted answer's payload)."""
    channel = unique_channel()
    bot.event({"type": "app_mention", "user": "U1", "text": text, "ts": new_ts(), "channel": channel})
    (call,) = wait_until(lambda: bot.slack.of("chat.postMessage", channel=channel))
    return channel, call.payload


def element(answer: dict, kind: str) -> dict:
    return next(e for b in answer["blocks"] for e in b.get("elements", []) if e.get("type") == kind
                and e.get("action_id") in {"feedback", "fit_report"})  # fmt: skip


def interaction(payload: dict) -> str:
    return urlencode({"payload": json.dumps(payload)})


def thumbs_body(bot: Bot, value: str, channel: str, user: str = "U1", action_ts: str | None = None) -> str:
    return interaction({
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": user}, "api_app_id": "A1",
        "container": {"type": "message", "channel_id": channel, "message_ts": "1700000001.000100"},
        "channel": {"id": channel}, "trigger_id": f"{uuid.uuid4().int % 10**12}.1",
        "response_url": f"{bot.slack.url}/webhook/{uuid.uuid4().hex}",  # type: ignore[attr-defined]
        "actions": [{"type": "feedback_buttons", "action_id": "feedback", "block_id": "fb", "value": value,
                     "text": {"type": "plain_text", "text": "👍"}, "action_ts": action_ts or f"{time.time():.6f}"}],
    })  # fmt: skip


def stored(redis_server: RedisProcess) -> list[dict]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        return [json.loads(client.get(k)) for k in client.scan_iter("headroom:feedback:*")]
    finally:
        client.close()


def metric(bot: Bot, kind: str, value: str) -> float:
    found = re.search(rf'headroom_feedback_total\{{kind="{kind}",value="{value}"\}} ([0-9.]+)', bot.http.get("/metrics").text)
    return float(found.group(1)) if found else 0.0


def test_every_answer_carries_feedback_buttons_and_did_it_fit(bot: Bot) -> None:
    _, answer = answered(bot)
    thumbs = element(answer, "feedback_buttons")
    assert thumbs["positive_button"]["text"]["text"] == "👍" and thumbs["negative_button"]["text"]["text"] == "👎"
    (block,) = [b for b in answer["blocks"] if b["type"] == "context_actions"]
    assert block["elements"] == [thumbs]
    fit = element(answer, "button")
    assert fit["text"]["text"] == "Did it fit?"
    carried = json.loads(fit["value"])
    assert carried["r"] == {"model": "meta-llama/Llama-3.3-70B-Instruct", "weights": "fp8", "context_tokens": 8192}
    assert carried["t"]["instance"] == "g7e.2xlarge" and carried["t"]["tp"] == 1


def test_a_thumbs_click_is_stored_once_and_counted(bot: Bot, redis_server: RedisProcess) -> None:
    channel, answer = answered(bot, "<@UHEADROOM> qwen3 32b fp8 16k 4 users")
    down = element(answer, "feedback_buttons")["negative_button"]["value"]
    before = metric(bot, "thumbs", "down")
    body = thumbs_body(bot, down, channel, user="UVOTER")
    assert bot.signed(body, "application/x-www-form-urlencoded").status_code == 200
    assert bot.signed(body, "application/x-www-form-urlencoded").status_code == 200  # a replay: stored once
    wait_until(lambda: metric(bot, "thumbs", "down") == before + 1)
    (record,) = [r for r in stored(redis_server) if r["request"].get("model") == "Qwen/Qwen3-32B"]
    assert record["kind"] == "thumbs" and record["value"] == "down"
    assert record["request"] == {"model": "Qwen/Qwen3-32B", "weights": "fp8", "context_tokens": 16384, "concurrency": 4}
    assert record["digest"] and record["at"].endswith("+00:00") and record["suggested"]["instance"]
    assert set(record) == {"kind", "value", "request", "suggested", "digest", "at"}  # no user, no words
    time.sleep(0.3)
    assert metric(bot, "thumbs", "down") == before + 1
    assert 'headroom_requests_total{outcome="duplicate",surface="feedback"}' in bot.http.get("/metrics").text


def test_bad_and_unsigned_clicks_are_ignored(bot: Bot, redis_server: RedisProcess) -> None:
    channel = unique_channel()
    before = len(stored(redis_server))
    forged = json.dumps({"r": {"model": "x" * 300}, "v": "up"})  # not a request headroom wrote
    bot.signed(thumbs_body(bot, forged, channel), "application/x-www-form-urlencoded")
    bot.signed(thumbs_body(bot, "not json", channel), "application/x-www-form-urlencoded")
    valid = json.dumps({"r": {"model": "meta-llama/Llama-3.1-8B-Instruct"}, "v": "up"})
    unsigned = bot.http.post("/slack/events", content=thumbs_body(bot, valid, channel),
                             headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert unsigned.status_code == 401
    wait_until(lambda: 'headroom_requests_total{outcome="expired",surface="feedback"} 2.0' in bot.http.get("/metrics").text)
    time.sleep(0.2)
    assert len(stored(redis_server)) == before


def test_did_it_fit_opens_a_form_whose_answer_is_stored_with_the_logs_figures(bot: Bot, redis_server: RedisProcess) -> None:
    channel, answer = answered(bot, "<@UHEADROOM> llama 3.3 70b fp8 8k context on g6e.12xlarge")
    fit = element(answer, "button")
    trigger = f"{uuid.uuid4().int % 10**12}.fit"
    payload = {
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "UFIT"}, "api_app_id": "A1",
        "container": {"type": "message", "channel_id": channel, "message_ts": "1700000002.000100"},
        "channel": {"id": channel}, "trigger_id": trigger,
        "actions": [{"type": "button", "action_id": "fit_report", "block_id": "fit", "value": fit["value"],
                     "action_ts": f"{time.time():.6f}"}],
    }  # fmt: skip
    assert bot.signed(interaction(payload), "application/x-www-form-urlencoded").status_code == 200
    (opened,) = wait_until(lambda: bot.slack.of("views.open", trigger_id=trigger))
    view = opened.payload["view"] if isinstance(opened.payload["view"], dict) else json.loads(opened.payload["view"])
    assert view["callback_id"] == "fit_report" and "g6e.12xlarge" in view["blocks"][0]["text"]["text"]
    before = metric(bot, "outcome", "oom")
    values = {"outcome": {"value": {"type": "radio_buttons", "selected_option": {"value": "oom"}}},
              "held": {"value": {"type": "number_input", "value": "12"}},
              "log": {"value": {"type": "plain_text_input", "value": OOM_LOG}}}  # fmt: skip
    submission = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "UFIT"}, "api_app_id": "A1",
                  "view": {**view, "id": "VFIT1", "state": {"values": values}}}  # fmt: skip
    response = bot.signed(interaction(submission), "application/x-www-form-urlencoded")
    assert response.status_code == 200 and response.json()["response_action"] == "update"
    said = response.json()["view"]["blocks"][0]["text"]["text"]  # the disagreement with the prediction is said
    assert said.startswith("Thanks — recorded.") and "I predicted *g6e.12xlarge* would start" in said
    assert "you saw 12" in said and "Paste" not in said  # the log came with the form
    wait_until(lambda: metric(bot, "outcome", "oom") == before + 1)
    (record,) = [r for r in stored(redis_server) if r["kind"] == "outcome" and r["suggested"].get("instance") == "g6e.12xlarge"]
    assert record["value"] == "oom" and record["held"] == 12 and record["suggested"]["max_requests"] > 0
    assert record["log"]["numbers"]["weights_gib"] == 67.72 and record["log"]["numbers"]["kv_cache_gib"] == 1.2
    assert "Available KV cache" not in json.dumps(record)  # the figures are kept, not the text
    assert metric(bot, "log", "kv_too_small_for_max_len") >= 1


def test_an_empty_form_is_sent_back_with_a_question(bot: Bot) -> None:
    submission = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "UFIT"}, "api_app_id": "A1",
                  "view": {"id": "VEMPTY", "type": "modal", "callback_id": "fit_report", "private_metadata": "{}",
                           "state": {"values": {}}}}  # fmt: skip
    response = bot.signed(interaction(submission), "application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.json()["response_action"] == "errors" and response.json()["errors"]["outcome"]
    del submission["view"]["type"]  # a signed oddity Bolt would crash on is refused before it
    assert bot.signed(interaction(submission), "application/x-www-form-urlencoded").status_code == 400


def test_feedback_export_prints_calibration_shaped_rows(bot: Bot, redis_server: RedisProcess,
                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    channel, answer = answered(bot, "<@UHEADROOM> gemma 3 27b bf16 32k on 2x h100")
    up = element(answer, "feedback_buttons")["positive_button"]["value"]
    before = metric(bot, "thumbs", "up")
    bot.signed(thumbs_body(bot, up, channel, user="UEXPORT"), "application/x-www-form-urlencoded")
    wait_until(lambda: metric(bot, "thumbs", "up") == before + 1)
    assert main(["feedback", "export", "--redis-url", redis_server.url]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out)))
    header = out.splitlines()[0].split(",")
    with CALIBRATION.open() as calibration:
        assert header[: len(CALIBRATION_COLUMNS)] == next(csv.reader(calibration))  # the calibration file's columns
    (row,) = [r for r in rows if r["model"] == "google/gemma-3-27b-it" and r["verdict"] == "up"]
    assert row["engine"] == "vLLM" and row["weights_dtype"] == "bf16" and row["kv_dtype"] == "auto"
    assert row["max_model_len"] == "32768" and row["tp"] == "2" and "H100" in row["gpu"]
    assert row["gpu_mem_util"] == "0.92" and row["weights_gib"] == "" and row["feedback"] == "thumbs"
    assert row["notes"].startswith("from Slack feedback") and row["digest"] and row["at"]


def test_a_diagnosis_carries_thumbs_but_asks_no_did_it_fit(bot: Bot) -> None:
    """A diagnosed log already is the real outcome: it can be rated, not reported again."""
    _, answer = answered(bot, f"<@UHEADROOM> llama 3.3 70b fp8 on p5.4xlarge died: ```{OOM_LOG}```")
    assert answer["blocks"][0]["text"]["text"].startswith("Diagnosis")
    carried = json.loads(element(answer, "feedback_buttons")["positive_button"]["value"])
    assert carried["r"]["model"] == "meta-llama/Llama-3.3-70B-Instruct" and carried["r"]["instance"] == "p5.4xlarge"
    assert not [e for b in answer["blocks"] for e in b.get("elements", []) if e.get("action_id") == "fit_report"]


def fit_click(bot: Bot, channel: str, value: str, trigger: str) -> str:
    return interaction({
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "UFIT"}, "api_app_id": "A1",
        "container": {"type": "message", "channel_id": channel, "message_ts": new_ts()}, "channel": {"id": channel},
        "trigger_id": trigger, "response_url": f"{bot.slack.url}/webhook/{uuid.uuid4().hex}",  # type: ignore[attr-defined]
        "actions": [{"type": "button", "action_id": "fit_report", "block_id": "fit", "value": value,
                     "action_ts": new_ts()}],
    })  # fmt: skip


def test_did_it_fit_opens_the_form_before_the_click_is_answered(bot: Bot) -> None:
    channel, answer = answered(bot, "<@UHEADROOM> qwen2.5 7b bf16 8k")
    trigger = f"{uuid.uuid4().int % 10**12}.now"
    assert bot.signed(fit_click(bot, channel, element(answer, "button")["value"], trigger),
                      "application/x-www-form-urlencoded").status_code == 200  # fmt: skip
    assert bot.slack.of("views.open", trigger_id=trigger)  # already open: no queue between the click and the form


def test_a_click_that_arrives_too_late_for_the_form_is_asked_again_in_words(bot: Bot) -> None:
    channel, answer = answered(bot, "<@UHEADROOM> qwen2.5 7b bf16 16k")
    bot.slack.fail("views.open", "expired_trigger_id")
    body = fit_click(bot, channel, element(answer, "button")["value"], f"{uuid.uuid4().int % 10**12}.late")
    assert bot.signed(body, "application/x-www-form-urlencoded").status_code == 200
    (said,) = wait_until(lambda: [c for c in bot.slack.of("response_url") if c.hook == hook_id(body)])
    assert "Click *Did it fit?* again" in said.payload["text"] and said.payload["response_type"] == "ephemeral"
    assert said.payload.get("replace_original") is False  # the answer stays

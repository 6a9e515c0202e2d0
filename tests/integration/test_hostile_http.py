"""Hostile HTTP traffic against the real server: nothing unverified is read whole, parsed, logged or counted.

Each test sends what an attacker (or a confused proxy) would, to the real ASGI app over HTTP, and
checks what must hold: status codes (never a 500), /metrics that cannot grow, logs without bodies,
memory that does not follow body sizes, and slash commands answered whatever words they contain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.metrics import LABEL_VALUES
from tests.integration.conftest import SECRET, Bot, unique_channel
from tests.integration.servers import FakeSlack, RedisProcess, ServeProcess, wait_until

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
WRONG_SIGNATURE = "v0=" + "0" * 64


def sign(body: bytes, timestamp: str) -> str:
    """Slack's scheme over the raw bytes: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    return "v0=" + hmac.new(SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()


def post_raw(bot: Bot, body: bytes | Iterator[bytes], content_type: str = JSON, signed: bool = True,
             timestamp: str | None = None, **headers: str) -> httpx.Response:  # fmt: skip
    """A request with exactly these bytes, signed with the real secret or with a wrong signature."""
    ts = timestamp if timestamp is not None else str(int(time.time()))
    signature = sign(body, ts) if signed and isinstance(body, bytes) else WRONG_SIGNATURE
    sent = {"content-type": content_type, "x-slack-request-timestamp": ts, "x-slack-signature": signature}
    return bot.http.post("/slack/events", content=body, headers=sent | headers)


def series(metrics_text: str) -> set[str]:
    return {line.rsplit(" ", 1)[0] for line in metrics_text.splitlines() if line and not line.startswith("#")}


def labels(metrics_text: str) -> list[tuple[str, str]]:
    return re.findall(r'(\w+)="([^"]*)"', "\n".join(series(metrics_text)))


# --- 1. /metrics cannot grow from unverified requests -------------------------------------------


def test_unverified_requests_add_no_series_to_metrics_and_labels_come_from_fixed_sets(bot: Bot) -> None:
    post_raw(bot, b"{}", signed=False)  # the first refusal creates its counter
    before = bot.http.get("/metrics").text
    for i in range(150):
        body = json.dumps({"type": f"junk_{i}", "command": f"/evil{i}", "event": {"type": f"evil_{i}"}}).encode()
        for timestamp in ("not-a-number", "", str(int(time.time()))):
            assert post_raw(bot, body, signed=False, timestamp=timestamp).status_code == 401
        signed = post_raw(bot, body)  # with the secret: Bolt finds no listener for these types
        assert signed.status_code in (400, 404)
    after = bot.http.get("/metrics").text
    assert series(after) == series(before)
    assert abs(len(after) - len(before)) < 200  # only counts changed
    for name, value in labels(after):
        assert name == "le" or value in LABEL_VALUES[name], (name, value)  # le: the histogram's own buckets


# --- 2. size limit, signature first, nothing logged ---------------------------------------------


def test_a_body_over_64_kib_is_refused_with_413_before_it_is_read(bot: Bot) -> None:
    declared = post_raw(bot, b"x" * (64 * 1024 + 1), signed=False)
    assert declared.status_code == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: the server must count as it reads
        for _ in range(160):  # 10 MiB
            yield b"y" * 65536

    streamed = post_raw(bot, chunked(), signed=False)
    assert streamed.status_code == 413
    exactly = post_raw(bot, b"{" + b" " * (64 * 1024 - 2) + b"}")  # at the limit: read, verified, parsed
    assert exactly.status_code == 404  # an empty payload: nothing handles it, but it got that far


@pytest.mark.parametrize(
    ("name", "body", "content_type"),
    [
        ("truncated JSON", b'{"type": "event_callback", "event": {"type": "app_mention"', JSON),
        ("invalid UTF-8", b'{"type": "event_callback", "x": "\xff\xfe"}', JSON),
        ("a JSON array", b'[{"type": "event_callback"}]', JSON),
        ("deep nesting", b'{"a":' * 5000 + b"1" + b"}" * 5000, JSON),
        (
            "nesting past the depth limit",
            json.dumps(
                {"type": "x", "a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
            ).encode(),
            JSON,
        ),
        ("payload that is not JSON", b"payload=%7Bnot-json", FORM),
        ("payload that is a JSON array", b"payload=%5B1%2C2%5D", FORM),
        ("a form body sent as JSON", b"command=%2Fheadroom&text=llama+3.1+8b", JSON),
        ("a percent-encoded byte that is not UTF-8", b"command=%2Fheadroom&text=%FF%FE", FORM),
        ("an event that is not an object", b'{"type": "event_callback", "event": "app_mention"}', JSON),
        ("actions that are not objects", b'{"type": "block_actions", "actions": [1, 2]}', JSON),
        ("a user that is a list", b'{"type": "event_callback", "user": [], "event": {"type": "message"}}', JSON),
        ("an unknown content type", b"text=llama", "text/plain"),
        ("no content type", b'{"type": "event_callback"}', ""),
    ],
)
def test_malformed_requests_get_400_when_signed_and_401_when_not_never_500(
    bot: Bot, caplog: pytest.LogCaptureFixture, name: str, body: bytes, content_type: str
) -> None:
    with caplog.at_level(logging.INFO):
        signed = post_raw(bot, body, content_type)
        unsigned = post_raw(bot, body, content_type, signed=False)
    assert signed.status_code == (401 if name == "invalid UTF-8" else 400), name  # bytes Slack never signs
    assert unsigned.status_code == 401, name  # refused on the signature: the body was never parsed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(
    "timestamp", ["", "not-a-number", "+1700000000", "1_700_000_000", "1.7e9", "٣".encode() * 10, "9" * 40, "-5"]
)
def test_an_empty_or_non_numeric_timestamp_is_401(
    bot: Bot, caplog: pytest.LogCaptureFixture, timestamp: str | bytes
) -> None:
    body = b'{"type": "event_callback", "event": {"type": "app_mention"}}'
    raw = timestamp if isinstance(timestamp, bytes) else timestamp.encode()
    signature = "v0=" + hmac.new(SECRET.encode(), b"v0:" + raw + b":" + body, hashlib.sha256).hexdigest()
    with caplog.at_level(logging.INFO):  # signed, with that very timestamp
        response = bot.http.post("/slack/events", content=body, headers={
            "content-type": JSON, "x-slack-request-timestamp": raw, "x-slack-signature": signature})  # fmt: skip
    assert response.status_code == 401
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_slash_command_text_is_never_logged_even_when_the_signature_fails(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    marker = "SECRET-WORDS-" + unique_channel()
    body = bot.command_body(f"llama 3.1 8b {marker}", unique_channel()).encode()
    with caplog.at_level(logging.DEBUG):
        assert post_raw(bot, body, FORM, signed=False).status_code == 401
        assert post_raw(bot, body, FORM, timestamp=str(int(time.time()) - 3600)).status_code == 401
    assert marker not in caplog.text


# --- 3. "payload" anywhere in a slash command ---------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "what payload fits llama 3.1 8b"},
        {"team_domain": "payloadco"},
        {"channel_name": "payload-team"},
        {"user_name": "payloadpete"},
        {"text": 'llama 3.1 8b payload={"x":1}'},
    ],
)
def test_a_slash_command_containing_payload_is_answered(bot: Bot, fields: dict[str, str]) -> None:
    channel = unique_channel()
    text = fields.pop("text", "llama 3.1 8b")
    assert bot.command(text, channel, **fields).status_code == 200
    (call,) = wait_until(lambda: bot.slack.of("chat.postMessage", channel=channel))
    assert "Llama 3.1 8B" in call.payload["text"]


# --- 11. identical signed requests replayed -----------------------------------------------------


def test_a_replayed_slash_command_or_click_is_answered_once(bot: Bot) -> None:
    channel = unique_channel()
    body = bot.command_body("qwen3 32b fp8", channel)
    ts = str(int(time.time()))
    headers = {"content-type": FORM, "x-slack-request-timestamp": ts,
               "x-slack-signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body) or ""}  # fmt: skip
    assert [bot.http.post("/slack/events", content=body, headers=headers).status_code for _ in range(3)] == [200] * 3
    (answer,) = wait_until(lambda: bot.slack.of("chat.postMessage", channel=channel))
    value = next(e["value"] for b in answer.payload["blocks"] if b["type"] == "actions" for e in b["elements"])
    click = bot.click_body(value, channel, "1700000000.000100")
    for _ in range(3):
        assert bot.signed(click, FORM).status_code == 200
    wait_until(lambda: len(bot.slack.of("chat.postMessage", channel=channel)) == 2)
    time.sleep(0.4)
    assert len(bot.slack.of("chat.postMessage", channel=channel)) == 2  # the command once, the click once


# --- 2 (resources). 8 concurrent 10 MB unsigned bodies against `headroom serve` ------------------


def test_eight_concurrent_10_mb_unsigned_bodies_cost_little_memory_and_no_log(
    redis_server: RedisProcess, fake_slack: FakeSlack
) -> None:
    server = ServeProcess({"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET,
                           "SLACK_API_URL": f"{fake_slack.url}/api/", "REDIS_URL": redis_server.url})  # type: ignore[attr-defined]  # fmt: skip
    try:
        server.wait_ready()
        client = Bot(server.url, fake_slack)
        client.command("warm up", unique_channel())  # first request: Bolt's auth.test, pools opened
        time.sleep(0.5)
        rss, log_before = server.memory_kib("VmRSS"), server.log_size()
        server.reset_peak()
        statuses: list[int] = []

        def attack(i: int) -> None:
            def chunks() -> Iterator[bytes]:
                block = b"A" * 65536
                for _ in range(160):  # 10 MiB
                    yield block

            headers = {"content-type": JSON, "x-slack-request-timestamp": str(int(time.time())),
                       "x-slack-signature": WRONG_SIGNATURE}  # fmt: skip
            if i % 2:  # half declare their length, half stream without one
                headers["content-length"] = str(160 * 65536)
            try:
                with httpx.Client(timeout=30) as http:
                    statuses.append(
                        http.post(server.url + "/slack/events", content=chunks(), headers=headers).status_code
                    )
            except httpx.HTTPError:
                statuses.append(0)  # the server closed the connection on us: also a refusal

        attackers = [threading.Thread(target=attack, args=(i,)) for i in range(8)]
        for thread in attackers:
            thread.start()
        started = time.monotonic()
        ack = client.command("llama 3.1 8b", unique_channel())  # a real request in the middle of it
        ack_s = time.monotonic() - started
        for thread in attackers:
            thread.join(timeout=60)
        peak_growth_mib = (server.memory_kib("VmHWM") - rss) / 1024
        log_growth = server.log_size() - log_before
    finally:
        logs = server.stop()
    assert set(statuses) <= {413, 0} and statuses.count(413) >= 4, statuses
    assert ack.status_code == 200 and ack_s < 2.0
    assert peak_growth_mib < 16, peak_growth_mib
    assert log_growth < 16 * 1024, log_growth
    assert "AAAAAAAA" not in logs and "Traceback" not in logs


def test_slacks_own_handshakes_still_work_through_the_gate(bot: Bot) -> None:
    challenge = post_raw(bot, json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"}).encode())
    assert challenge.status_code == 200 and challenge.json() == {"challenge": "c-123"}
    probe = post_raw(bot, b"ssl_check=1&token=abc", FORM, signed=False)  # Slack's certificate check
    assert probe.status_code == 200
    assert post_raw(bot, b"ssl_check=1&token=abc&text=more", FORM, signed=False).status_code == 401


def test_a_request_without_signature_headers_is_refused_after_at_most_a_few_bytes(bot: Bot) -> None:
    def chunked() -> Iterator[bytes]:
        for _ in range(160):  # 10 MiB, never read: 401 after the first chunk
            yield b"z" * 65536

    bare = bot.http.post("/slack/events", content=chunked(), headers={"content-type": JSON})
    assert bare.status_code == 401
    probe = bot.http.post("/slack/events", content=b"ssl_check=1&token=abc", headers={"content-type": FORM})
    assert probe.status_code == 200

"""The assistant panel's words (templates/assistant.j2) ask questions headroom answers well."""

from __future__ import annotations

import pytest

from bot.cli import main
from engine.request import Request
from engine.service import respond
from tests.support import CATALOG, VIEWS

WORDS = VIEWS.macros("assistant.j2")


@pytest.mark.parametrize("prompt", WORDS.prompts, ids=lambda p: p["title"])
def test_every_suggested_prompt_is_answered_with_an_instance(prompt: dict) -> None:
    turn = respond(prompt["message"], None, CATALOG)
    assert turn.kind == "answer" and not turn.unread and turn.plan is not None and turn.plan.top is not None
    assert len(prompt["title"]) <= 75


@pytest.mark.parametrize(
    "request_",
    [Request(model="Qwen/Qwen2.5-72B-Instruct", weights="bf16", concurrency=20),
     Request(model="meta-llama/Llama-3.1-8B-Instruct", concurrency="max"),
     Request(model="deepseek-ai/DeepSeek-R1", weights="fp8", context_tokens=131072)],
)  # fmt: skip
def test_the_channel_prompt_reads_back_as_the_same_model_at_32k(request_: Request) -> None:
    name = next(m.name for m in CATALOG.models if m.id == request_.model)
    turn = respond(str(WORDS.channel_prompt(name, request_)), None, CATALOG)
    assert turn.request is not None and not turn.unread
    assert (turn.request.model, turn.request.context_tokens) == (request_.model, 32768)
    assert turn.request.weights == request_.weights and turn.request.concurrency == request_.concurrency


def test_a_thread_title_names_model_precision_context_and_users() -> None:
    assert str(WORDS.title("Llama 3.3 70B Instruct", Request(model="x", weights="fp8"))) == "Llama 3.3 70B Instruct · FP8 · 8k"
    titled = WORDS.title("Qwen3 32B", Request(model="x", context_tokens=20000, concurrency=16))
    assert str(titled) == "Qwen3 32B · 20,000 · 16 users"


def test_feedback_export_without_redis_says_what_to_set(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["feedback", "export"]) == 2
    assert "REDIS_URL" in capsys.readouterr().err


def test_the_forms_thanks_says_whether_the_run_matched_the_prediction() -> None:
    assert str(WORDS.fit_thanks("g6e.xlarge", 6.3, "fits", None)).endswith("matches the prediction for *g6e.xlarge*.")
    assert "disagree" in str(WORDS.fit_thanks("g6e.xlarge", 6.3, "oom", None)) and "Paste" in str(
        WORDS.fit_thanks("g6e.xlarge", 6.3, "oom", None))
    assert "Paste" not in str(WORDS.fit_thanks("g6e.xlarge", 6.3, "oom", None, True))  # the log came with the form
    assert str(WORDS.fit_thanks("g6e.xlarge", 6.3, "", 6)).endswith("about 6.3 requests per replica; you saw 6 — close.")
    assert "a real difference" in str(WORDS.fit_thanks("g6e.xlarge", 6.3, "fits", 2))
    assert str(WORDS.fit_thanks(None, None, "", None)) == "Thanks — recorded."

"""`headroom plan "free text"` and `headroom chat` at the terminal."""

from __future__ import annotations

import argparse
import json

from bot.cli import main, run_chat


def plan_json(capsys, *argv: str) -> dict:
    assert main(["plan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_text_and_flags_give_the_same_budget(capsys) -> None:
    by_flags = plan_json(capsys, "--model", "llama-3.3-70b", "--weights", "fp8", "--context", "8192")
    by_words = plan_json(capsys, "llama 3.3 70b fp8 8k context")
    bare = plan_json(capsys, "70B fp8 8k context")
    assert by_flags["budget"] == by_words["budget"] == bare["budget"]
    assert by_flags["candidates"][0]["instance"] == bare["candidates"][0]["instance"]
    assert any(a["code"] == "bare_size" and "'70B' read as a dense GQA model" in a["text"] for a in bare["assumptions"])
    assert not any("read as" in a["text"] for a in by_words["assumptions"])


def test_flags_add_to_the_words(capsys) -> None:
    data = plan_json(capsys, "llama 3.3 70b fp8 8k context", "--concurrency", "4", "--weights", "fp8")
    assert (data["request"]["context_tokens"], data["request"]["weights_dtype"], data["request"]["concurrency"]) == (
        8192,
        "fp8",
        4,
    )


def test_a_flag_that_contradicts_the_words_is_refused_not_preferred(capsys) -> None:
    assert main(["plan", "llama 3.3 70b fp8 8k context", "--context", "32k"]) == 2
    assert "two contexts: '8,192' and '32,768'" in capsys.readouterr().err


def test_unreadable_text_exits_2_saying_what_was_understood(capsys) -> None:
    assert main(["plan", "lamma fp8 8k 16 users"]) == 2
    err = capsys.readouterr().err
    assert "understood:" in err and all(p in err for p in ("weights=fp8", "context_tokens=8,192", "concurrency=16"))
    assert "did you mean" in err and "Traceback" not in err


def test_chat_follow_ups_say_what_changed(capsys) -> None:
    lines = ["llama 3.3 70b fp8 8k context", "what about 32k?", "nonsense words", "int4 instead"]
    assert run_chat(argparse.Namespace(json=False), lines) == 0
    out = capsys.readouterr().out
    assert out.count("\nBudget\n") == 3
    assert "context: 8,192 → 32,768" in out
    assert "weights: fp8 → int4" in out
    assert "I couldn't tell what to change" in out

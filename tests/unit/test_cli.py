"""`headroom plan`: tables, --json, and exit code 2 with a clear message on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout, stderr; argparse's own rejections (SystemExit) count as exit codes too."""
    try:
        code = main(["plan", *argv])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_prints_a_ranked_table(capsys) -> None:
    code, out, _ = run(capsys, "--model", "llama-3.3-70b", "--weights", "fp8", "--context", "8192")
    assert code == 0
    assert "67.7 GiB" in out and "2.50 GiB at 8,192 tokens" in out
    assert "2 × RTX PRO 6000 Blackwell (96 GiB)" in out
    assert "4 × L4 (22 GiB)" in out
    assert "vllm serve" in out


def test_json_has_the_documented_contract(capsys) -> None:
    code, out, _ = run(capsys, "--model", "llama-3.3-70b", "--weights", "fp8", "--context", "8k", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data["request"]) >= {"model", "weights_dtype", "kv_dtype", "context_tokens", "concurrency"}
    assert set(data["budget"]) >= {"weights_gib", "kv_bytes_per_token", "kv_gib_per_sequence"}
    fields = {
        "instance", "gpu", "gpu_count", "tp", "pp", "replicas", "verdict", "weights_gib_per_gpu",
        "kv_cache_gib_per_gpu", "kv_cache_tokens", "max_concurrency", "decode_tokens_per_s_per_user",
        "throughput_tokens_per_s", "ttft_s", "usd_per_hour", "usd_per_million_tokens", "reasons",
    }  # fmt: skip
    assert all(fields <= set(c) for c in data["candidates"])
    assert {c["verdict"] for c in data["candidates"]} <= {"fits", "tight", "no_kv_room", "does_not_load"}
    assert data["warnings"] is not None and data["assumptions"] and data["catalog_as_of"]["prices"]
    assert data["request"]["context_tokens"] == 8192


def test_pinned_gpu_flags(capsys) -> None:
    code, out, _ = run(capsys, "--model", "llama-3.1-8b", "--gpu", "h100", "--gpus", "2", "--json")
    assert code == 0
    (only,) = json.loads(out)["candidates"]
    assert only["instance"] is None and only["gpu_count"] == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "lama-3.3-70b"], "did you mean: meta-llama/Llama-3.3-70B-Instruct"),
        (["--model", "llama-3.1-8b", "--concurrency", "0"], "at least 1"),
        (["--model", "llama-3.1-8b", "--instance", "p9.48xlarge"], "don't know the EC2 instance"),
        (["--model", "llama-3.1-8b", "--gpu", "h1000"], "don't know the GPU"),
        (["--model", "llama-3.1-8b", "--instance", "p5.48xlarge", "--gpu", "h100"], "not both"),
        (["--model", "llama-3.1-8b", "--gpus", "2"], "--gpus needs --gpu"),
        (
            ["--model", "llama-3.1-8b", "--context", "4096", "--input-tokens", "4000", "--output-tokens", "500"],
            "exceed",
        ),
        (["--model", "llama-3.1-8b", "--gpu-memory-utilization", "1.5"], "gpu_memory_utilization must be at most 1"),
        (["--model", "llama-3.1-8b", "--concurrency", "many"], "'many' is not a number of users for --concurrency"),
        (["--model", "llama-3.1-8b", "--context", "long"], "'long' is not a token count for --context"),
        (["--context", "8192"], "which model"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(capsys, argv: list[str], message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_context_beyond_the_model_warns_and_succeeds(capsys) -> None:
    code, out, _ = run(capsys, "--model", "phi-2", "--context", "16k")
    assert code == 0 and "longer than" in out


def test_console_script_runs_as_a_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "plan", "--model", "nonsense-model-xyz"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "headroom:" in result.stderr and "Traceback" not in result.stderr


def test_blocks_prints_the_slack_message(capsys) -> None:
    code, out, _ = run(capsys, "--model", "llama-3.3-70b", "--weights", "fp8", "--blocks")
    assert code == 0
    message = json.loads(out)
    from bot.blocks import check_limits

    check_limits(message["blocks"])
    assert message["blocks"][0]["type"] == "header" and "g7e.2xlarge" in message["text"]
    check_limits(message["chart_blocks"])  # issue 15: the layout Slack is offered first
    assert [b["chart"]["type"] for b in message["chart_blocks"] if b["type"] == "data_visualization"] == ["bar"]


def test_pp_flag_pins_pipeline_stages_on_one_instance(capsys) -> None:
    code, out, _ = run(capsys, "plan", "--json", "--model", "Qwen/Qwen3-235B-A22B", "--weights", "fp8",
                       "--instance", "g6e.48xlarge", "--tp", "4", "--pp", "2")  # fmt: skip
    top = json.loads(out)["candidates"][0]
    assert code == 0 and (top["tp"], top["pp"]) == (4, 2)
    assert "--tensor-parallel-size 4 --pipeline-parallel-size 2" in top["vllm_command"]
    assert run(capsys, "plan", "--model", "llama-3.1-8b", "--pp", "x")[0] == 2

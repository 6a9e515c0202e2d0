"""vLLM's offline LLM() class (issue 10): its own batch defaults, and the answer's command as an LLM() call."""

from __future__ import annotations

import ast
import json
import shlex

import pytest

from bot.cli import main
from engine.catalog.loader import Catalog
from engine.catalog.resolve import resolve_model
from engine.command import llm_call
from engine.parse import parse_request
from engine.ranking import plan
from engine.request import Request
from engine.served import serve
from engine.vllm_memory import batch_defaults, memory_budget, visible_gib
from engine.vllm_overheads import EngineArgs, Topology

OFFLINE = EngineArgs(offline=True)


def test_the_llava_next_log_ran_with_the_offline_class_defaults(catalog: Catalog) -> None:
    """public_startup_logs.csv single-h100class-llava16-mistral7b-v0102: `python3 vlm_inference_with_vllm.py`
    (the LLM class, vLLM 0.10.2, 79.19 GiB visible) printed 'Chunked prefill is enabled with
    max_num_batched_tokens=16384', the engine default for that run; vllm serve's would be 8,192
    (EngineArgs._set_default_args: UsageContext.LLM_CLASS 16384 / OPENAI_API_SERVER 8192 on >= 70 GiB)."""
    gpu = catalog.gpu("h100-sxm")
    assert batch_defaults(catalog, gpu, 79.19, OFFLINE).max_num_batched_tokens == 16384
    assert batch_defaults(catalog, gpu, 79.19).max_num_batched_tokens == 8192
    small = catalog.gpu("l4")
    assert batch_defaults(catalog, small, visible_gib(small), OFFLINE).max_num_batched_tokens == 8192
    assert batch_defaults(catalog, small, visible_gib(small)).max_num_batched_tokens == 2048
    a100 = catalog.gpu("a100-80gb")  # "a100" in the device name: the small pair in both contexts
    assert batch_defaults(catalog, a100, visible_gib(a100), OFFLINE).max_num_batched_tokens == 8192


def test_the_offline_profile_leaves_less_kv_on_a_small_gpu(catalog: Catalog) -> None:
    model = serve(resolve_model(catalog, "llama-3.1-8b").spec, "fp8", "auto")
    gpu, behaviour = catalog.gpu("l4"), catalog.vllm_version("0.28")
    served = memory_budget(model, catalog, gpu, 1, 1, behaviour, 8192, None, None, Topology("none"))
    offline = memory_budget(model, catalog, gpu, 1, 1, behaviour, 8192, None, None, Topology("none"), OFFLINE)
    assert offline.binding.activation > served.binding.activation
    assert offline.binding.kv_pool < served.binding.kv_pool
    assert offline.batching.max_num_batched_tokens == 4 * served.batching.max_num_batched_tokens


@pytest.mark.parametrize(
    ("words", "offline"),
    [("llama 3.1 8b offline batch", True), ("llama 3.1 8b with LLM()", True), ("llama 3.1 8b python api", True),
     ("llama 3.1 8b offline inference 8k", True), ("llama 3.1 8b 8k", False)],
)  # fmt: skip
def test_the_request_language_reads_offline(catalog: Catalog, words: str, offline: bool) -> None:
    assert parse_request(words, catalog).offline is offline


def test_hf_hub_offline_is_not_the_offline_class(catalog: Catalog) -> None:
    assert parse_request("llama 3.1 8b hf_hub_offline", catalog).offline is False


def test_the_answer_prints_an_llm_call_with_the_serve_line_s_settings(catalog: Catalog) -> None:
    asked = Request(model="qwen2.5-72b", weights="fp8", context_tokens=16384, instance="g6e.12xlarge", tp=4,
                    max_num_seqs=64, enforce_eager=True)  # fmt: skip
    serve_line = plan(asked, catalog).candidates[0].vllm_command
    call = plan(asked.replace(offline=True), catalog).candidates[0].vllm_command
    assert serve_line and serve_line.startswith("vllm serve ") and call
    words = shlex.split(call)
    assert words[:2] == ["python", "-c"]
    tree = ast.parse(words[2])  # valid Python
    llm = tree.body[1].value  # type: ignore[attr-defined]
    keywords = {k.arg: ast.literal_eval(k.value) for k in llm.keywords}
    flags = shlex.split(serve_line)[3:]
    read = dict(zip(flags[::2], flags[1::2], strict=False))
    assert keywords["model"] == shlex.split(serve_line)[2]
    assert keywords["tensor_parallel_size"] == 4 == int(read["--tensor-parallel-size"])
    assert keywords["max_model_len"] == 16384 and keywords["max_num_seqs"] == 64
    assert keywords["gpu_memory_utilization"] == float(read["--gpu-memory-utilization"])
    assert keywords["enforce_eager"] is True


def test_json_flags_become_dicts_and_data_parallelism_stays_out() -> None:
    call = llm_call("VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vllm serve org/m --data-parallel-size 2 --max-model-len 8192 "
                    """--speculative-config '{"model":"org/d","num_speculative_tokens":3}' --enable-lora""")  # fmt: skip
    words = shlex.split(call)
    assert words[:3] == ["VLLM_ALLOW_LONG_MAX_MODEL_LEN=1", "python", "-c"]
    keywords = {k.arg: ast.literal_eval(k.value) for k in ast.parse(words[3]).body[1].value.keywords}  # type: ignore[attr-defined]
    assert keywords == {"model": "org/m", "max_model_len": 8192, "enable_lora": True,
                        "speculative_config": {"model": "org/d", "num_speculative_tokens": 3}}  # fmt: skip


def test_the_cli_flag_plans_offline_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--json", "--model", "llama-3.1-8b", "--weights", "fp8", "--offline", "--instance", "g6.xlarge"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["request"]["offline"] is True
    assert data["candidates"][0]["vllm_command"].startswith("python -c 'from vllm import LLM; LLM(")
    assert any(n["code"] == "offline_class" for n in data["assumptions"])
    assert main(["plan", "llama 3.1 8b fp8 offline", "--instance", "g6.xlarge"]) == 0
    assert "Load it" in capsys.readouterr().out


def test_from_0_28_a_gpu_of_160_gib_or_more_gets_16k_batched_tokens_in_both_contexts(catalog: Catalog) -> None:
    """EngineArgs.get_batch_defaults (vllm/engine/arg_utils.py), 0.28.0 (not 0.27.1): device_memory >= 160 GiB
    gives {LLM_CLASS: 16384, OPENAI_API_SERVER: 16384} tokens and 1,024 sequences, before the 70 GiB rule."""
    b200, h200 = catalog.gpu("b200"), catalog.gpu("h200")
    assert visible_gib(b200) >= 160 > visible_gib(h200)
    for args in (EngineArgs(), OFFLINE):
        assert tuple(batch_defaults(catalog, b200, visible_gib(b200), args, "0.28")) == (16384, 1024)
    assert tuple(batch_defaults(catalog, b200, visible_gib(b200), EngineArgs(), "0.27")) == (8192, 1024)
    assert tuple(batch_defaults(catalog, h200, visible_gib(h200), EngineArgs(), "0.28")) == (8192, 1024)
    # the flags still win
    assert batch_defaults(catalog, b200, 178.6, EngineArgs(max_num_batched_tokens=4096), "0.28").max_num_batched_tokens == 4096
    # the larger profile batch costs a B200 pool its activations: Llama 3.3 70B FP8, one GPU
    model = serve(resolve_model(catalog, "llama-3.3-70b").spec, "fp8", "auto")
    old, new = (memory_budget(model, catalog, b200, 1, 1, catalog.vllm_version(v), 8192) for v in ("0.27", "0.28"))
    assert new.batching.max_num_batched_tokens == 2 * old.batching.max_num_batched_tokens
    assert new.binding.activation > old.binding.activation
    assert new.binding.kv_pool == pytest.approx(old.binding.kv_pool - (new.binding.activation - old.binding.activation))


def test_offline_replicas_are_separate_llm_processes_not_one_data_parallel_server(catalog: Catalog) -> None:
    from tests.support import VIEWS

    turn = plan(Request(model="qwen3-32b", weights="fp8", context_tokens=16384, instance="g6e.24xlarge", replicas=2,
                        offline=True), catalog)  # fmt: skip
    top = turn.candidates[0]
    assert top.replicas == 2 and "data_parallel_size" not in (top.vllm_command or "")
    assert all(c.code != "data_parallel" for c in top.caveats)
    text = VIEWS.terminal(turn)
    assert "run 2 of them, each in its own process" in text and "--data-parallel-size" not in text

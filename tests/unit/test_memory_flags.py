"""vllm serve's memory flags: each against a public start-up log that set it, or the vLLM code path it mirrors."""

from __future__ import annotations

import pytest

from bot.cli import main
from engine.catalog.loader import Catalog
from engine.catalog.resolve import resolve_model
from engine.parse import parse_request
from engine.ranking import plan
from engine.request import Request
from engine.serve_command import read_command
from engine.served import GIB, serve
from engine.vllm_memory import activation_terms, memory_budget
from engine.vllm_overheads import EngineArgs, Topology

PCIE = Topology("pcie")


def test_max_num_seqs_32_matches_the_rtx_pro_6000_tp4_log(catalog: Catalog) -> None:
    """public_startup_logs.csv pcie-rtxpro6000-x4-qwen3-235b-fp8-tp4-v0271: --max-num-seqs 32, util 0.90,
    32,768 tokens: 'Model loading took 55.19 GiB', '(0.9, 85.51 GiB). Actual usage is 56.89 GiB for consumed
    memory (weights + non-torch), 0.76 GiB for peak activation, and 0.32 GiB for CUDAGraph memory', KV 27.85 GiB
    (Instruct-2507-FP8 has Qwen3-235B-A22B's architecture).

    How 0.27.1 prints them (v1/worker/gpu_worker.py:Worker.determine_available_memory, compile_or_warm_up_model):
    'peak activation' is the transient torch peak plus the CUDA-graph estimate; 'consumed' is everything the
    profile left allocated (weights, non-torch, the fused-MoE workspace); 'CUDAGraph memory' is the pool the
    real capture took, which vLLM's estimate exceeds by 10-140 % in the logs that print both.
    """
    model = serve(resolve_model(catalog, "Qwen/Qwen3-235B-A22B").spec, "fp8", "auto")
    gpu, behaviour = catalog.gpu("rtx-pro-6000-server"), catalog.vllm_version("0.27.1")
    flagged = memory_budget(model, catalog, gpu, 4, 1, behaviour, 32768, 0.9, None, PCIE, EngineArgs(max_num_seqs=32))
    default = memory_budget(model, catalog, gpu, 4, 1, behaviour, 32768, 0.9, None, PCIE)
    stage = flagged.binding
    assert stage.usable == pytest.approx(85.51, abs=0.01) and stage.weights == pytest.approx(55.19, rel=0.01)
    # 11 piecewise sizes (1, 2, 4, 8..64) and 7 FULL decode sizes (up to 32): 0.30 GiB, was 1.85 (per layer only)
    assert abs(stage.cudagraph - 0.32) <= 0.05
    # the TritonExperts workspace of 8,192 tokens: 8,192 x 8 x (4,096 + 4,096) x 2 B, kept after the profile
    workspace = activation_terms(model, flagged.batching, 4, gpu).workspace / GIB
    assert workspace == pytest.approx(1.0, abs=0.001)
    # printed 'peak activation' = transient + estimate: 0.51 predicted (was 0.35 + 1.85 = 2.20)
    assert abs(stage.activation - workspace + stage.cudagraph - 0.76) <= 0.3
    # every term but non-torch: the log's consumed memory in place of ours leaves the pool within 1 %
    given_consumed = stage.kv_pool + stage.weights + stage.non_torch + workspace - 56.89
    assert given_consumed == pytest.approx(27.85, rel=0.01)
    # in full +3.0 %: headroom's 0.20 GiB PCIe non-torch is 0.57 GiB under this log (docs/vllm-memory.md)
    assert 0.4 <= 56.89 - (stage.weights + stage.non_torch + workspace) <= 0.8
    assert default.kv_tokens < 621_392 * 0.95  # 1,024 dummy sequences: a sampler peak the log did not have


def test_cpu_offload_leaves_embeddings_and_lm_head_on_the_gpu(catalog: Catalog) -> None:
    """vllm#15196 (public_startup_logs.csv single-l40s-dscoderv2lite-cpuoffload-v072): DeepSeek-Coder-V2-Lite
    (DeepSeek-V2-Lite's architecture), bf16, --cpu-offload-gb 30 on an L40S: 'model weights take 0.80GiB'."""
    model = serve(resolve_model(catalog, "deepseek-ai/DeepSeek-V2-Lite-Chat").spec, "bf16", "auto")
    args = EngineArgs(cpu_offload_gb=30, max_num_batched_tokens=40000, enforce_eager=True)
    budget = memory_budget(model, catalog, catalog.gpu("l40s"), 1, 1, catalog.vllm_version("0.21"), 100000, 0.45,
                           None, Topology("none"), args)  # fmt: skip
    assert budget.binding.weights == pytest.approx(0.80, abs=0.03)
    assert model.total_weight_bytes / GIB > 29  # without the flag it does not load at 0.45 x 44 GiB


def test_enforce_eager_reserves_no_cuda_graph_estimate(catalog: Catalog) -> None:
    """gpu_worker: the graph estimate is profiled only when graphs are captured; --enforce-eager captures none."""
    model = serve(resolve_model(catalog, "llama-3.1-8b").spec, None, "auto")
    gpu, behaviour = catalog.gpu("l40s"), catalog.vllm_version("0.21")
    graphs = memory_budget(model, catalog, gpu, 1, 1, behaviour, 8192)
    eager = memory_budget(model, catalog, gpu, 1, 1, behaviour, 8192, args=EngineArgs(enforce_eager=True))
    assert eager.binding.cudagraph == 0 < graphs.binding.cudagraph
    assert eager.binding.kv_pool == pytest.approx(graphs.binding.kv_pool + graphs.binding.cudagraph)


def test_max_num_batched_tokens_sizes_the_profiling_forward_and_caps_the_dummy_sequences(catalog: Catalog) -> None:
    """profile_run: _dummy_run(max_num_batched_tokens); the sampler run uses min(max_num_seqs, tokens) rows."""
    model = serve(resolve_model(catalog, "llama-3.1-8b").spec, None, "auto")
    gpu, behaviour = catalog.gpu("h100-sxm"), catalog.vllm_version("0.21")
    small = memory_budget(model, catalog, gpu, 1, 1, behaviour, 8192, args=EngineArgs(max_num_batched_tokens=512))
    assert small.batching.max_num_batched_tokens == 512 and small.batching.max_num_seqs == 1024
    terms = activation_terms(model, small.batching, 1)
    assert terms.logits == 512 * model.arch.vocab and terms.hidden_states == 512 * model.arch.hidden * 2
    default = memory_budget(model, catalog, gpu, 1, 1, behaviour, 8192)
    assert small.binding.activation < default.binding.activation / 2


def test_kv_cache_memory_bytes_is_the_pool(catalog: Catalog) -> None:
    """determine_available_memory returns cache_config.kv_cache_memory_bytes and skips the profile's arithmetic."""
    model = serve(resolve_model(catalog, "llama-3.1-8b").spec, None, "auto")
    budget = memory_budget(model, catalog, catalog.gpu("l40s"), 1, 1, catalog.vllm_version("0.21"), 8192,
                           args=EngineArgs(kv_cache_memory_bytes=8 * 2**30))  # fmt: skip
    assert budget.binding.kv_pool == 8.0
    assert budget.kv_tokens == pytest.approx(8 * 2**30 / model.kv_bytes_per_token(), abs=16 * 8)


@pytest.mark.parametrize(
    ("words", "fields"),
    [
        ("llama 3.1 8b max-num-seqs 32", {"max_num_seqs": 32}),
        ("llama 3.1 8b max num seqs 32 8k context", {"max_num_seqs": 32, "context_tokens": 8192}),
        ("llama 3.1 8b eager", {"enforce_eager": True}),
        ("llama 3.1 8b enforce eager 4 users", {"enforce_eager": True, "concurrency": 4}),
        ("llama 3.1 8b batched tokens 8192", {"max_num_batched_tokens": 8192}),
        ("llama 3.1 8b cpu offload 10gb", {"cpu_offload_gb": 10.0}),
    ],
)
def test_the_request_language_reads_the_flags(catalog: Catalog, words: str, fields: dict[str, object]) -> None:
    request = parse_request(words, catalog)
    assert {k: getattr(request, k) for k in fields} == fields


def test_cli_flags_and_printed_command_carry_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--model", "llama-3.1-8b", "--instance", "g6e.xlarge", "--max-num-seqs", "32",
            "--max-num-batched-tokens", "4k", "--enforce-eager", "--cpu-offload-gb", "2", "--json"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    for flag in ("--max-num-seqs 32", "--max-num-batched-tokens 4096", "--enforce-eager", "--cpu-offload-gb 2"):
        assert flag in out


def test_a_printed_command_reads_back_to_the_same_flags_and_pool(catalog: Catalog) -> None:
    request = Request(model="llama-3.1-8b", instance="g6e.xlarge", max_num_seqs=32, max_num_batched_tokens=4096,
                      enforce_eager=True, cpu_offload_gb=2.0, kv_cache_memory_bytes=20 * 2**30)  # fmt: skip
    chosen = plan(request, catalog).candidates[0]
    assert chosen.vllm_command is not None
    read = read_command(chosen.vllm_command)
    assert not read.not_modelled
    for key in ("max_num_seqs", "max_num_batched_tokens", "enforce_eager", "cpu_offload_gb", "kv_cache_memory_bytes"):
        assert read.fields[key] == getattr(request, key)
    again = plan(request.replace(**read.fields | {"model": "llama-3.1-8b"}), catalog).candidates[0]
    assert again.kv_cache_tokens == chosen.kv_cache_tokens


def test_vllm_s_own_kv_cache_memory_hint_is_read() -> None:
    """0.27's log suggests `--kv-cache-memory=N` (argparse's prefix of --kv-cache-memory-bytes)."""
    assert read_command("vllm serve m --kv-cache-memory=8820325233").fields["kv_cache_memory_bytes"] == 8820325233

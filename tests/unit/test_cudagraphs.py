"""vLLM's CUDA-graph estimate follows the capture sizes its config derives (engine/vllm_cudagraphs.py)."""

from __future__ import annotations

import pytest

from engine.catalog.loader import BatchDefaults, Catalog
from engine.catalog.resolve import resolve_model
from engine.served import serve
from engine.vllm_cudagraphs import capture_set, capture_sizes, reserves_graph_estimate
from engine.vllm_memory import memory_budget
from engine.vllm_overheads import EngineArgs

H100_SERVE = BatchDefaults(max_num_batched_tokens=8192, max_num_seqs=1024)


def test_default_sizes_are_1_2_4_then_steps_of_8_and_16_up_to_512(catalog: Catalog) -> None:
    """VllmConfig._set_cudagraph_sizes: cap = min(max_num_seqs x 2, 512, max_num_batched_tokens)."""
    h100, v019 = catalog.gpu("h100-sxm"), catalog.vllm_version("0.19.0")
    sizes = capture_sizes(H100_SERVE, v019, h100)
    assert sizes[:5] == (1, 2, 4, 8, 16) and sizes[-3:] == (480, 496, 512) and len(sizes) == 51
    graphs = capture_set(H100_SERVE, v019, h100)
    # what the v0.19 H100 logs' estimates extrapolate over: first capture + 50 + 50 further graphs
    assert (graphs.piecewise, graphs.full, graphs.profiled_graphs) == (51, 51, 101)


def test_max_num_seqs_and_batched_tokens_cap_the_sizes_per_version(catalog: Catalog) -> None:
    h100 = catalog.gpu("h100-sxm")
    seqs32 = capture_set(
        BatchDefaults(max_num_batched_tokens=8192, max_num_seqs=32), catalog.vllm_version("0.27.1"), h100
    )
    assert seqs32.sizes == (1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64) and (seqs32.piecewise, seqs32.full) == (11, 7)
    odd = BatchDefaults(max_num_batched_tokens=300, max_num_seqs=1024)
    # from 0.21 max_num_batched_tokens is captured too when it is under the cap; 0.19 stops at 288
    assert capture_sizes(odd, catalog.vllm_version("0.19.0"), h100)[-1] == 288
    assert capture_sizes(odd, catalog.vllm_version("0.21.0"), h100)[-2:] == (288, 300)
    # 0.28 lifts the default cap to 1,024 on data-centre Blackwell (sm_100) only
    b200 = catalog.gpu("b200")
    assert capture_sizes(H100_SERVE, catalog.vllm_version("0.28.0"), b200)[-1] == 1024
    assert capture_sizes(H100_SERVE, catalog.vllm_version("0.27.1"), b200)[-1] == 512
    assert capture_sizes(H100_SERVE, catalog.vllm_version("0.28.0"), h100)[-1] == 512


def test_speculative_tokens_widen_the_decode_graphs(catalog: Catalog) -> None:
    """decode_query_len = 1 + num_speculative_tokens scales the cap; FULL decode sizes start at it."""
    batching = BatchDefaults(max_num_batched_tokens=8192, max_num_seqs=8)
    graphs = capture_set(batching, catalog.vllm_version("0.21.0"), catalog.gpu("h100-sxm"), decode_query_len=4)
    assert graphs.largest == 64 and graphs.full == len([s for s in graphs.sizes if 4 <= s <= 32])


def test_the_estimate_follows_max_num_seqs_and_is_reserved_from_0_21(catalog: Catalog) -> None:
    model = serve(resolve_model(catalog, "llama-3.1-8b").spec, None, "auto")
    gpu, v021 = catalog.gpu("h100-sxm"), catalog.vllm_version("0.21.0")
    default = memory_budget(model, catalog, gpu, 1, 1, v021, 8192).binding
    few = memory_budget(model, catalog, gpu, 1, 1, v021, 8192, args=EngineArgs(max_num_seqs=8)).binding
    # the v0.19 H100 logs estimate 0.84 GiB for this model at the default 1,024 sequences
    assert default.cudagraph == pytest.approx(0.84, abs=0.05)
    assert few.cudagraph < default.cudagraph / 4 and few.kv_pool > default.kv_pool
    assert not reserves_graph_estimate(model, catalog.vllm_version("0.20.2")) and reserves_graph_estimate(model, v021)


def test_the_fused_moe_workspace_stays_under_the_sampler_peak(catalog: Catalog) -> None:
    """Qwen1.5-MoE-A2.7B on one H100 (vllm_memory.csv, v0.19.0, training row): 'activation peak 2.47 GiB'. The
    dummy sampler run sets the peak, and TritonExperts' workspace (8,192 x 4 x (2,048 + 2,816) x 2 B = 0.30 GiB,
    kept by the WorkspaceManager) is still allocated under it: without it the model said 2.18."""
    model = serve(resolve_model(catalog, "Qwen/Qwen1.5-MoE-A2.7B").spec, None, "auto")
    budget = memory_budget(model, catalog, catalog.gpu("h100-sxm"), 1, 1, catalog.vllm_version("0.19.0"), 8192, 0.9)
    assert budget.binding.activation == pytest.approx(2.47, abs=0.02)

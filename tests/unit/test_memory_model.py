"""Weights by tensor group, KV per token (GQA, MLA, windows), vLLM's accounting."""

from __future__ import annotations

import pytest

from engine.catalog.loader import Catalog
from engine.catalog.resolve import resolve_model
from engine.served import GIB, pipeline_stages, serve
from engine.vllm_memory import memory_budget


def served(catalog: Catalog, name: str, weights: str | None = None, kv: str = "auto"):
    return serve(resolve_model(catalog, name).spec, weights, kv)


def test_llama_33_70b_fp8_keeps_embeddings_in_bf16(catalog: Catalog) -> None:
    model = served(catalog, "llama-3.3-70b", "fp8")
    assert model.total_weight_bytes / GIB == pytest.approx(67.7, abs=0.05)  # not 65.7: lm_head/embeddings BF16
    assert model.kv_bytes_per_token() == 2 * 80 * 8 * 128 * 2
    assert model.kv_bytes_per_request(8192, 1, 8192) / GIB == pytest.approx(2.5)


def test_fp8_kv_halves_the_cache(catalog: Catalog) -> None:
    assert (
        served(catalog, "llama-3.1-8b", kv="fp8").kv_bytes_per_token() * 2
        == served(catalog, "llama-3.1-8b").kv_bytes_per_token()
    )


def test_mla_caches_the_latent_once_per_layer_on_every_rank(catalog: Catalog) -> None:
    model = served(catalog, "deepseek-v3", "bf16")
    per_token = (512 + 64) * 61 * 2
    assert model.kv_bytes_per_token(1) == per_token
    assert model.kv_bytes_per_token(8) == per_token  # not divided by TP


def test_kv_heads_are_replicated_when_tp_exceeds_them(catalog: Catalog) -> None:
    model = served(catalog, "qwen2.5 7b")  # 4 KV heads
    assert model.kv_bytes_per_token(8) == model.kv_bytes_per_token(4)


def test_sliding_window_layers_cap_a_long_request(catalog: Catalog) -> None:
    model = served(catalog, "gemma 2 27b")  # 23 of 46 layers windowed at 4096
    full = model.kv_bytes_per_token() * 32768
    assert model.kv_bytes_per_request(32768, 1, 2048) < full * 0.65
    # at 8k with an 8k scheduler step the window saves nothing, as in vLLM
    assert model.kv_bytes_per_request(8192, 1, 8192) == model.kv_bytes_per_token() * 8192


def test_moe_keeps_every_expert_resident_but_activates_few(catalog: Catalog) -> None:
    model = served(catalog, "mixtral 8x7b")
    assert model.params.total / 1e9 == pytest.approx(46.7, abs=0.1)
    assert model.active_params / 1e9 == pytest.approx(12.9, abs=0.1)


def test_pipeline_stages_follow_vllm_split(catalog: Catalog) -> None:
    assert [s.layer_count for s in pipeline_stages(61, 4)] == [15, 15, 16, 15]
    assert pipeline_stages(32, 2)[0].first and pipeline_stages(32, 2)[1].last


def test_one_h100_has_no_room_for_an_8k_request_of_70b_fp8(catalog: Catalog) -> None:
    model = served(catalog, "llama-3.3-70b", "fp8")
    behaviour = catalog.vllm_version("0.19")
    budget = memory_budget(model, catalog, catalog.gpu("h100-sxm"), 1, 1, behaviour, 8192, 0.9)
    assert budget.loads and budget.max_concurrency < 1


def test_newer_vllm_subtracts_cuda_graph_memory(catalog: Catalog) -> None:
    model = served(catalog, "llama-3.1-8b")
    gpu = catalog.gpu("h100-sxm")
    old = memory_budget(model, catalog, gpu, 1, 1, catalog.vllm_version("0.19"), 8192, 0.9)
    new = memory_budget(model, catalog, gpu, 1, 1, catalog.vllm_version("0.21"), 8192, 0.9)
    assert new.binding.cudagraph > 0 == old.binding.cudagraph
    assert new.binding.kv_pool < old.binding.kv_pool


def test_small_gpus_get_smaller_batching_defaults_and_activation_peaks(catalog: Catalog) -> None:
    model = served(catalog, "llama-3.1-8b")
    behaviour = catalog.vllm_version("0.19")
    l40s = memory_budget(model, catalog, catalog.gpu("l40s"), 1, 1, behaviour, 8192)
    h100 = memory_budget(model, catalog, catalog.gpu("h100-sxm"), 1, 1, behaviour, 8192)
    assert l40s.batching.max_num_seqs == 256 and h100.batching.max_num_seqs == 1024
    assert l40s.binding.activation < h100.binding.activation / 2


def test_mxfp4_experts_are_padded_on_blackwell(catalog: Catalog) -> None:
    model = served(catalog, "gpt-oss-120b")
    behaviour = catalog.vllm_version("0.19")
    h100 = memory_budget(model, catalog, catalog.gpu("h100-sxm"), 1, 1, behaviour, 8192)
    b200 = memory_budget(model, catalog, catalog.gpu("b200"), 1, 1, behaviour, 8192)
    assert b200.binding.weights > h100.binding.weights > model.total_weight_bytes / GIB


def test_the_default_is_the_newest_modelled_and_a_newer_release_says_whose_rules_it_used(catalog: Catalog) -> None:
    from engine.ranking import plan
    from engine.request import Request
    from tests.support import words

    assert catalog.vllm.default_version == catalog.vllm.newest_modelled == catalog.vllm.versions[-1].version
    newer = plan(Request(model="llama-3.1-8b", vllm_version="0.33.0"), catalog)
    said = [words(n) for n in newer.warnings]
    assert any("0.33.0 is newer" in w and "planned with 0.28's rules" in w for w in said)
    assert catalog.vllm_version("0.33.0") == catalog.vllm_version("0.28")


#: Releases read against 0.28.0 and not modelled (docs/vllm-memory.md "vLLM 0.29.0-0.33.0"): from 0.29.0
#: model runner V2 runs every model and its GPUModelRunner.profile_cudagraph_memory (v1/worker/gpu/model_runner.py)
#: measures a CUDA-graph estimate by capturing the graphs, instead of returning 0 as in 0.25-0.28.
READ_NOT_MODELLED = ("0.29.0", "0.30.0", "0.31.0", "0.32.0", "0.33.0")


@pytest.mark.parametrize("release", READ_NOT_MODELLED)
def test_a_release_read_but_not_modelled_is_planned_with_0_28_s_rules_and_v1_graphs_and_says_so(catalog: Catalog, release: str) -> None:
    from engine.ranking import plan
    from engine.request import Request
    from tests.support import words

    assert catalog.vllm.newest_modelled == "0.28"
    assert catalog.vllm_version(release) == catalog.vllm_version("0.28")
    asked, modelled = (plan(Request(model="llama-3.1-8b", vllm_version=v), catalog) for v in (release, "0.28"))
    said = [words(n) for n in asked.warnings]
    assert any(f"{release} is newer" in w and "planned with 0.28's rules" in w for w in said)
    assert not any("is newer" in words(n) for n in modelled.warnings)
    assert any("reserving the V1 runner's CUDA-graph estimate for every model" in w for w in said)
    # a dense model: 0.28's runner V2 reserves no graphs; for 0.29+ (V2 measures its graphs) V1's estimate is kept
    assert all(c.cudagraph_gib_per_gpu == 0 for c in modelled.candidates if c.feasible)
    older = plan(Request(model="llama-3.1-8b", vllm_version="0.24"), catalog)
    # (0.28's own changes, the >=160 GiB batch defaults and sm_100's capture cap, spare GPUs under 100 GiB)
    pools = [[(c.instance, c.kv_cache_gib_per_gpu, c.cudagraph_gib_per_gpu, c.kv_cache_tokens) for c in p.candidates
              if c.gpu_memory_gib < 100] for p in (asked, older)]  # fmt: skip
    assert pools[0] and pools[0] == pools[1] and any(c.cudagraph_gib_per_gpu > 0 for c in asked.candidates)
    # a MoE model stays on V1 in 0.28 too: 0.28's figures
    moe = [plan(Request(model="qwen3-30b-a3b", vllm_version=v), catalog) for v in (release, "0.28")]
    assert [c.kv_cache_tokens for c in moe[0].candidates] == [c.kv_cache_tokens for c in moe[1].candidates]


def test_the_cuda_graph_estimate_is_subtracted_from_0_21_as_vllm_s_own_log_says(catalog: Catalog) -> None:
    """'CUDA graph memory profiling is enabled (default since v0.21.0)': 0.20 only logged it."""
    assert not catalog.vllm_version("0.20.2").subtract_cudagraph_estimate
    assert catalog.vllm_version("0.21.0").subtract_cudagraph_estimate

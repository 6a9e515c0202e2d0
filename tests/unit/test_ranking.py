"""plan(): which instances fit, how they are placed and ranked, and what a rejection says."""

from __future__ import annotations

import pytest

from engine.catalog.loader import Catalog
from engine.errors import InvalidRequest, UnknownHardware
from engine.ranking import plan
from engine.request import Request
from tests.support import CATALOG, VIEWS, words


def plan_for(request: Request):  # noqa: ANN201
    return plan(request, CATALOG)


def by_instance(result):
    return {c.instance: c for c in result.candidates}


@pytest.fixture(scope="module")
def llama70_fp8_8k():
    return plan_for(Request(model="llama-3.3-70b", weights="fp8", context_tokens=8192))


def test_70b_fp8_ranks_g7e_and_g6e_among_the_fits(llama70_fp8_8k) -> None:
    fits = [c for c in llama70_fp8_8k.candidates if c.feasible]
    families = {c.family for c in fits}
    assert {"g7e", "g6e"} <= families
    prices = [c.usd_per_hour for c in fits if c.usd_per_hour is not None]
    assert prices == sorted(prices)  # cheapest first
    assert all(c.feasible for c in llama70_fp8_8k.candidates[: len(fits)])  # feasible before rejections


def test_70b_fp8_budget_numbers(llama70_fp8_8k) -> None:
    assert llama70_fp8_8k.budget.weights_gib == pytest.approx(67.7, abs=0.05)
    assert llama70_fp8_8k.budget.kv_gib_per_sequence == pytest.approx(2.5, abs=0.01)


def test_one_h100_starts_on_model_runner_v2_and_not_before(llama70_fp8_8k, catalog: Catalog) -> None:
    """vLLM 0.25+ runs dense models on model runner V2, which reserves no CUDA-graph estimate
    (engine/vllm_cudagraphs.py): one H100 then holds about one 8k request; under 0.24's V1 runner the
    estimate leaves less than one, and vLLM refuses to start."""
    p5 = by_instance(llama70_fp8_8k)["p5.4xlarge"]
    assert p5.feasible and 1 <= p5.max_concurrency < 1.5 and p5.cudagraph_gib_per_gpu == 0
    older = plan(Request(model="llama-3.3-70b", weights="fp8", context_tokens=8192, instance="p5.4xlarge",
                         vllm_version="0.24"), catalog).candidates[0]  # fmt: skip
    assert older.verdict in {"no_kv_room", "does_not_load"} and older.cudagraph_gib_per_gpu > 0
    assert older.reasons[0].code in {"kv_below_one_request", "kv_short"}
    assert "KV" in words(older.reasons[0])


def test_describes_instances_by_their_gpus(llama70_fp8_8k) -> None:
    cands = by_instance(llama70_fp8_8k)
    g7e = cands["g7e.12xlarge"]
    assert (g7e.gpu_count, round(g7e.gpu_memory_aws_gib)) == (2, 96)
    assert "RTX PRO 6000" in g7e.gpu
    g6 = cands["g6.12xlarge"]
    assert (g6.gpu_count, g6.gpu_id) == (4, "l4")


def test_neuron_and_non_cuda_instances_are_listed_not_ranked(llama70_fp8_8k) -> None:
    skipped = {name for item in llama70_fp8_8k.not_evaluated for name in item.instances}
    assert {"inf2.48xlarge", "trn1.32xlarge", "g4ad.xlarge"} <= skipped
    assert not skipped & set(by_instance(llama70_fp8_8k))


def test_fp8_weights_run_weight_only_before_ada_and_fp8_kv_needs_ampere(llama70_fp8_8k) -> None:
    cands = by_instance(llama70_fp8_8k)
    # vLLM >= 0.14 runs FP8 weights through Marlin on sm_75 (Turing): a weight-only caveat, not a refusal
    assert any(c.code == "fp8_weight_only" for c in cands["g4dn.metal"].caveats)
    assert any("weight-only" in words(c) for c in cands["p4de.24xlarge"].caveats)
    kv8 = by_instance(plan_for(Request(model="llama-3.1-8b", kv_dtype="fp8", families=("g4dn",))))
    assert kv8["g4dn.xlarge"].reasons[0].code == "fp8_kv_needs_sm80"


def test_gemma_is_refused_in_fp16_on_gpus_without_bf16() -> None:
    gemma = by_instance(plan_for(Request(model="gemma-3-27b", families=("g4dn",))))
    assert {c.reasons[0].code for c in gemma.values()} == {"fp16_refused"}
    assert "only FP32" in words(gemma["g4dn.12xlarge"].reasons[0])


def test_bf16_models_on_t4_start_in_half_precision() -> None:
    llama = plan_for(Request(model="llama-3.2-3b", instance="g4dn.xlarge", context_tokens=4096))
    (only,) = llama.candidates
    assert only.feasible and "--dtype half" in only.vllm_command
    assert any(c.code == "no_bf16" for c in only.caveats)


def test_more_users_need_more_gpus() -> None:
    one = plan_for(Request(model="llama-3.3-70b", weights="fp8", context_tokens=8192, concurrency=1))
    many = plan_for(Request(model="llama-3.3-70b", weights="fp8", context_tokens=8192, concurrency=64))
    assert one.top and many.top
    assert many.top.gpu_count * many.top.gpu_memory_gib > one.top.gpu_count * one.top.gpu_memory_gib
    assert by_instance(many)["g7e.2xlarge"].verdict == "no_kv_room"
    reason = by_instance(many)["g7e.2xlarge"].reasons[0]
    assert (reason.code, reason.concurrency) == ("kv_short", 64)
    assert "64 users" in words(reason)


def test_spare_gpus_become_replicas_and_the_command_starts_them_all() -> None:
    result = plan_for(Request(model="llama-3.1-8b", instance="g6e.48xlarge", concurrency=64))
    (only,) = result.candidates
    assert only.tp * only.replicas == 8 and only.replicas > 1
    assert f"--data-parallel-size {only.replicas}" in only.vllm_command
    assert f"--tensor-parallel-size {only.tp}" in only.vllm_command


def test_405b_in_bf16_on_p5_spans_several_instances() -> None:
    result = plan_for(Request(model="llama-3.1-405b", weights="bf16", context_tokens=8192, families=("p5",)))
    assert result.top and result.top.nodes >= 2 and result.top.pp == result.top.nodes
    assert any(w.code == "multi_node_plan" for w in result.warnings)
    assert result.top.instance.startswith(f"{result.top.nodes} × p5.48xlarge")
    assert "--pipeline-parallel-size" in result.top.vllm_command
    assert not plan_for(Request(model="llama-3.1-405b", weights="bf16", families=("p5",), multi_node=False)).top


def test_a_pinned_gpu_set_no_instance_has_is_unpriced_and_names_the_nearest_instance() -> None:
    result = plan_for(Request(model="llama-3.1-8b", gpu="h100", gpus=2, tp=2))
    (only,) = result.candidates
    assert (only.instance, only.gpu_id, only.tp, only.interconnect, only.usd_per_hour) == (None, "h100-sxm", 2, "nvlink", None)
    (warning,) = [w for w in result.warnings if w.code == "no_instance_with_gpus"]
    assert warning.nearest[0]["instance"] == "p5.48xlarge" and warning.nearest[0]["gpus"] == 8
    assert "no EC2 instance has exactly 2 × NVIDIA H100" in words(warning)


def test_a_pinned_gpu_set_an_instance_has_is_that_instance_at_its_price() -> None:
    result = plan_for(Request(model="llama-3.3-70b", weights="fp8", gpu="l40s", gpus=4))
    assert {c.instance for c in result.candidates} == {"g6e.12xlarge", "g6e.24xlarge"}
    assert result.top.instance == "g6e.12xlarge" and result.top.usd_per_hour == pytest.approx(10.49, abs=0.01)
    assert not [w for w in result.warnings if w.code == "no_instance_with_gpus"]


def test_budget_and_family_constraints_filter_the_ranking() -> None:
    result = plan_for(Request(model="llama-3.1-8b", families=("g6e",)))
    assert {c.family for c in result.candidates} == {"g6e"}
    cheap = plan_for(Request(model="llama-3.3-70b", weights="fp8", max_usd_per_hour=5))
    assert cheap.top and cheap.top.usd_per_hour <= 5
    missed = [r for c in cheap.candidates if c.feasible and not c.meets_targets for r in c.reasons]
    assert any(r.code == "over_budget" and "budget" in words(r) for r in missed)


def test_long_context_beyond_the_model_is_a_warning_not_a_crash() -> None:
    result = plan_for(Request(model="phi-2", context_tokens=8192))
    assert any(w.code == "context_beyond_model" and "longer than" in words(w) for w in result.warnings)


def test_unknown_instance_and_gpu_name_close_matches(catalog: Catalog) -> None:
    with pytest.raises(UnknownHardware) as err:
        plan_for(Request(model="llama-3.1-8b", instance="g6e.12xlarg"))
    assert "g6e.12xlarge" in err.value.suggestions
    with pytest.raises(UnknownHardware):
        plan_for(Request(model="llama-3.1-8b", gpu="h1000"))


def test_invalid_tp_and_contradictory_weights_are_explained() -> None:
    with pytest.raises(InvalidRequest) as tp:
        plan_for(Request(model="llama-3.1-8b", instance="p5.48xlarge", tp=3))
    assert (tp.value.code, tp.value.params["counts"], tp.value.params["heads"]) == ("tp_invalid", [8], 32)
    assert "must divide the GPU count (8 here) and the model's 32 attention heads" in VIEWS.error(tp.value)
    with pytest.raises(InvalidRequest) as weights:
        plan_for(Request(model="RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", weights="int4"))
    assert weights.value.code == "weights_conflict" and "drop one" in VIEWS.error(weights.value)


def test_sort_by_speed_puts_the_fastest_first() -> None:
    result = plan_for(Request(model="llama-3.1-8b", sort="speed"))
    fast = [c.decode_tokens_per_s_per_user for c in result.candidates if c.feasible]
    assert fast[0] == max(fast)

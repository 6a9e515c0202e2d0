"""Non-torch memory by interconnect: vLLM's custom all-reduce conditions and NCCL's PCIe ring."""

from __future__ import annotations

import pytest

from engine.catalog.loader import Catalog
from engine.catalog.resolve import resolve_model
from engine.ranking import plan
from engine.request import Request
from engine.served import serve
from engine.vllm_memory import memory_budget
from engine.vllm_overheads import Topology, custom_allreduce_enabled, non_torch_gib

PCIE, NVLINK = Topology("pcie"), Topology("nvlink")


@pytest.mark.parametrize(
    ("tp", "topology", "enabled"),
    [
        (2, PCIE, True),  # two PCIe GPUs with P2P: custom all-reduce on
        (4, PCIE, False),  # "not supported on more than two PCIe-only GPUs"
        (8, NVLINK, True),
        (3, NVLINK, False),  # "unsupported world size"
        (16, NVLINK, False),
        (8, Topology("nvlink", tp_spans_nodes=True), False),  # "process group spans across nodes"
        (1, NVLINK, False),
    ],
)
def test_custom_allreduce_follows_vllm_conditions(catalog: Catalog, tp: int, topology: Topology, enabled: bool) -> None:
    assert custom_allreduce_enabled(catalog, tp, topology) is enabled


def test_pcie_tp_charges_a_ring_not_the_nvswitch_buffers(catalog: Catalog) -> None:
    fitted = catalog.vllm.fitted
    four = non_torch_gib(catalog, 4, 1, PCIE)
    two = non_torch_gib(catalog, 2, 1, PCIE)
    assert four == pytest.approx(fitted.non_torch_tp_pcie_gib)
    assert two - four == pytest.approx(24 / 1024)  # TP2 also holds the custom all-reduce buffers
    assert non_torch_gib(catalog, 4, 1, NVLINK) > 2 * four


def test_a_pcie_l40s_pool_is_larger_than_the_nvlink_rules_said(catalog: Catalog) -> None:
    model = serve(resolve_model(catalog, "qwen2.5 32b").spec, None, "auto")
    gpu, behaviour = catalog.gpu("l40s"), catalog.vllm_version("0.21")
    pcie = memory_budget(model, catalog, gpu, 4, 1, behaviour, 8192, topology=PCIE)
    nvlink = memory_budget(model, catalog, gpu, 4, 1, behaviour, 8192, topology=NVLINK)
    assert pcie.binding.kv_pool - nvlink.binding.kv_pool == pytest.approx(
        nvlink.binding.non_torch - pcie.binding.non_torch
    )
    assert pcie.binding.non_torch < 0.5 < 2 < nvlink.binding.non_torch


def test_a_plan_on_g6e_uses_the_pcie_term(catalog: Catalog) -> None:
    chosen = plan(Request(model="qwen2.5 32b", instance="g6e.12xlarge", tp=4), catalog).candidates[0]
    assert chosen.non_torch_gib_per_gpu < 0.5
    p5 = plan(Request(model="qwen2.5 32b", instance="p5.48xlarge", tp=4), catalog).candidates[0]
    assert p5.non_torch_gib_per_gpu > 2


def test_a_bare_a100_is_resolved_with_the_assumption_said(catalog: Catalog) -> None:
    from tests.support import words

    found = plan(Request(model="llama-3.1-8b", gpu="a100", gpus=8), catalog)
    assert found.candidates[0].gpu_id == "a100-80gb"
    said = [words(n) for n in found.warnings]
    assert any('"a100" read as the NVIDIA A100 SXM4 80GB' in w for w in said)
    exact = plan(Request(model="llama-3.1-8b", gpu="a100 80gb", gpus=8), catalog)
    assert not any("read as" in words(n) for n in exact.warnings)

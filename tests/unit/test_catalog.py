"""The bundled data files: complete, sourced, and consistent with published facts."""

from __future__ import annotations

import pytest

from engine.architecture import param_breakdown
from engine.catalog.loader import Catalog
from engine.catalog.resolve import resolve_model
from engine.errors import UnknownModel

FAMILIES = [
    "p6-b300", "p6-b200", "p6e-gb200", "p5", "p5e", "p5en", "p4d", "p4de", "g7e", "g7", "g6e", "g6", "gr6",
    "g6f", "g5", "g5g", "g4dn", "g4ad", "p3", "p3dn", "inf2", "trn1", "trn2",
]  # fmt: skip

# every model the engine issue names, as a loose name people type
MODELS = [
    "llama 2 7b", "llama 2 13b", "llama 2 70b", "llama 3 8b", "llama 3 70b", "llama 3.1 8b", "llama 3.1 70b",
    "llama 3.1 405b", "llama 3.2 1b", "llama 3.2 3b", "llama 3.3 70b", "llama-4-scout-17b-16e",
    "llama-4-maverick-17b-128e", "codellama 7b", "codellama 13b", "codellama 34b", "mistral 7b",
    "mistral small 3.1", "mistral small 3.2", "mistral large 2", "mixtral 8x7b", "mixtral 8x22b",
    "qwen2.5 0.5b", "qwen2.5 1.5b", "qwen2.5 3b", "qwen2.5 7b", "qwen2.5 14b", "qwen2.5 32b", "qwen2.5 72b",
    "qwen2.5 coder 32b", "qwq 32b", "qwen3 0.6b", "qwen3 1.7b", "qwen3 4b", "qwen3 8b", "qwen3 14b", "qwen3 32b",
    "qwen3-30b-a3b", "qwen3-235b-a22b", "qwen3-next-80b-a3b", "qwen1.5-moe-a2.7b", "deepseek-v2-lite",
    "deepseek-v3", "deepseek-r1", "deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-7b",
    "deepseek-r1-distill-qwen-14b", "deepseek-r1-distill-qwen-32b", "deepseek-r1-distill-llama-8b",
    "deepseek-r1-distill-llama-70b", "kimi k2", "kimi-dev-72b", "kimi-vl-a3b", "gemma 7b", "gemma 2 2b",
    "gemma 2 9b", "gemma 2 27b", "gemma 3 1b", "gemma 3 4b", "gemma 3 12b", "gemma 3 27b", "phi-2",
    "phi-3 mini", "phi-3 medium", "phi-4", "granite 3.1 2b", "granite 3.1 8b", "granite 3.3 2b",
    "granite 3.3 8b", "granite vision 3.3 2b", "gpt-oss-20b", "gpt-oss-120b",
]  # fmt: skip


def test_every_instance_family_of_the_fact_sheet_is_in_the_catalog(catalog: Catalog) -> None:
    families = {i.family for i in catalog.instances.values()}
    assert set(FAMILIES) <= families


def test_every_instance_names_a_source_and_a_known_gpu(catalog: Catalog) -> None:
    for inst in catalog.instances.values():
        assert inst.sources, inst.name
        assert set(inst.sources) <= set(catalog.sources), inst.name
        assert inst.gpu in catalog.gpus


def test_catalog_carries_as_of_dates(catalog: Catalog) -> None:
    for key in ("models", "gpus", "instance_specs", "prices", "vllm"):
        assert catalog.as_of[key][:2] == "20", key


def test_reservation_only_families_have_no_on_demand_price(catalog: Catalog) -> None:
    assert catalog.instances["p5e.48xlarge"].price_usd_per_hour is None
    assert catalog.instances["trn2.48xlarge"].price_usd_per_hour is None
    assert catalog.instances["p5.48xlarge"].price_usd_per_hour == pytest.approx(55.04)


def test_g7e_12xlarge_is_two_rtx_pro_6000_with_96_gib_each(catalog: Catalog) -> None:
    inst = catalog.instances["g7e.12xlarge"]
    gpu = catalog.gpu(inst.gpu)
    assert (inst.gpu_count, inst.memory_mib_per_gpu, inst.interconnect) == (2, 98304, "pcie")
    assert "RTX PRO 6000" in gpu.name and gpu.compute_capability == "12.0"


@pytest.mark.parametrize("name", MODELS)
def test_every_listed_model_resolves_from_a_loose_name(catalog: Catalog, name: str) -> None:
    assert resolve_model(catalog, name).spec


@pytest.mark.parametrize(
    ("name", "model_id", "weights"),
    [
        ("meta-llama/Llama-3.3-70B-Instruct", "meta-llama/Llama-3.3-70B-Instruct", None),
        ("RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", "meta-llama/Llama-3.3-70B-Instruct", "fp8"),
        ("RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8", "meta-llama/Llama-3.1-8B-Instruct", "int8"),
        ("RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16", "meta-llama/Llama-3.1-8B-Instruct", "int4"),
        ("Qwen/Qwen2.5-72B-Instruct-AWQ", "Qwen/Qwen2.5-72B-Instruct", "int4"),
        ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-7B-Instruct", "int4"),
        ("nvidia/Llama-3.1-8B-Instruct-FP8", "meta-llama/Llama-3.1-8B-Instruct", "fp8"),
        ("Qwen/Qwen3-32B-FP8", "Qwen/Qwen3-32B", "fp8"),
        ("Llama 3.3 70B", "meta-llama/Llama-3.3-70B-Instruct", None),
        ("llama-3.3-70b", "meta-llama/Llama-3.3-70B-Instruct", None),
    ],
)
def test_hugging_face_ids_and_quantized_releases_resolve(catalog: Catalog, name: str, model_id: str, weights) -> None:
    resolved = resolve_model(catalog, name)
    assert (resolved.spec.id, resolved.implied_weights) == (model_id, weights)


def test_unknown_model_suggests_close_names(catalog: Catalog) -> None:
    with pytest.raises(UnknownModel) as err:
        resolve_model(catalog, "lama 3.3 70b")
    assert "meta-llama/Llama-3.3-70B-Instruct" in err.value.suggestions


def test_architectures_add_up_to_the_published_parameter_counts(catalog: Catalog) -> None:
    """Catches a wrong layer count, width or expert size in a data file (1 % tolerance)."""
    off = {}
    for spec in catalog.models:
        computed = param_breakdown(spec.arch).total / 1e9
        if abs(computed / spec.published_params_b - 1) > 0.01:
            off[spec.id] = (round(computed, 3), spec.published_params_b)
    assert not off, off

"""Hub files -> the catalog's model spec (engine/hub_model.py, hub_weights.py): pure, no server needed."""

from __future__ import annotations

import copy

import pytest

from bot.catalog_files import load_catalog
from bot.render import Views
from engine.catalog.loader import Catalog
from engine.catalog.resolve import resolve_model
from engine.errors import HeadroomError, InvalidRequest, ParseError
from engine.hub_model import HubFiles, hub_spec, text_config, wanted_repo, with_models
from engine.hub_weights import quantization, summarise
from engine.parse import parse_request
from engine.request import Request
from engine.service import answer, respond
from tests.hub.configs import CONFIGS, Tensors, tensors

REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def files(repo: str, config: dict, entries: Tensors) -> HubFiles:
    bits = quantization(repo, config).bits
    weights = summarise(text_config(config).get("num_hidden_layers", 0), entries, bits)
    return HubFiles(repo=repo, revision=REVISION, config=config, weights=weights)


@pytest.mark.parametrize("model", sorted(CONFIGS))
def test_architecture_from_hub_files_equals_the_catalog(model: str, catalog: Catalog) -> None:
    """A fine-tune with the base model's real config.json and headers gets exactly the catalog's architecture."""
    config = CONFIGS[model]
    spec = hub_spec(files("acme-ml/" + model.split("/")[1] + "-sft", config, tensors(config)))
    known = resolve_model(catalog, model).spec
    assert spec.arch == known.arch
    assert spec.dtype == known.dtype
    assert spec.published_params_b == pytest.approx(known.published_params_b, rel=0.002)


def _awq(entries: Tensors) -> Tensors:
    """The same model as AutoAWQ stores it: int32 words of eight 4-bit values, fp16 scales and packed zeros."""
    out: Tensors = {}
    for name, (_, shape) in entries.items():
        if ".layers." in name and name.endswith("proj.weight"):
            rows, cols = shape
            stem = name.removesuffix(".weight")
            out[f"{stem}.qweight"] = ("I32", [cols, rows // 8])
            out[f"{stem}.scales"] = ("F16", [cols // 128, rows])
            out[f"{stem}.qzeros"] = ("I32", [cols // 128, rows // 8])
        else:
            out[name] = ("F16", shape)
    return out


def test_a_quantized_checkpoint_is_counted_unpacked_and_keeps_its_format() -> None:
    config = copy.deepcopy(CONFIGS["meta-llama/Llama-3.1-8B-Instruct"])
    config["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm"}
    config["torch_dtype"] = "float16"
    spec = hub_spec(files("acme-ml/llama-3.1-8b-sft-awq", config, _awq(tensors(config))))
    assert spec.dtype == "int4" and spec.hub_method == "awq"
    assert spec.published_params_b == pytest.approx(8.030, abs=0.001)  # scales and zeros are not parameters


@pytest.mark.parametrize(
    ("quant", "expected"),
    [
        ({"quant_method": "fp8", "weight_block_size": [128, 128]}, "fp8"),
        ({"quant_method": "gptq", "bits": 8}, "int8"),
        ({"quant_method": "mxfp4"}, "mxfp4"),
        ({"quant_method": "modelopt", "quant_algo": "NVFP4"}, "fp4"),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "int4"),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float"}}},
            },
            "fp8",
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "float"}}},
            },
            "fp4",
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int"}}},
            },
            "int4",
        ),
    ],
)
def test_quantization_config_names_the_stored_format(quant: dict, expected: str) -> None:
    assert quantization("acme/x", {"quantization_config": quant}).weights == expected


def test_an_unknown_quantization_method_is_refused_by_name() -> None:
    with pytest.raises(HeadroomError) as caught:
        quantization("acme/x", {"quantization_config": {"quant_method": "hqq"}})
    assert caught.value.code == "hub_quantization_unsupported" and caught.value.params["method"] == "hqq"


def test_a_config_without_a_required_field_is_refused_naming_it() -> None:
    config = {k: v for k, v in CONFIGS["Qwen/Qwen2.5-7B-Instruct"].items() if k != "num_attention_heads"}
    with pytest.raises(HeadroomError) as caught:
        hub_spec(files("acme-ml/qwen-sft", config, tensors(CONFIGS["Qwen/Qwen2.5-7B-Instruct"])))
    assert caught.value.code == "hub_config_incomplete"
    assert caught.value.params["missing"] == ["num_attention_heads"]


def test_headers_that_disagree_with_the_config_are_refused_not_planned() -> None:
    config = CONFIGS["meta-llama/Llama-3.1-8B-Instruct"]
    entries = {k: v for k, v in tensors(config).items() if not k.startswith("model.layers.3")}  # layers 3, 30, 31 gone
    with pytest.raises(HeadroomError) as caught:
        hub_spec(files("acme-ml/llama-broken-8b", config, entries))
    assert caught.value.code == "hub_shape_mismatch"
    assert caught.value.params["config_params"] > caught.value.params["header_params"]


def test_multi_token_prediction_layers_and_vision_towers_are_kept_apart() -> None:
    config = copy.deepcopy(CONFIGS["meta-llama/Llama-3.1-8B-Instruct"])
    entries = tensors(config)
    entries["model.layers.32.mlp.up_proj.weight"] = ("BF16", [14336, 4096])  # an MTP layer past the 32 decoder layers
    entries["vision_tower.blocks.0.attn.qkv.weight"] = ("BF16", [3 * 1024, 1024])
    summary = summarise(32, entries, 16)
    assert summary.extra_layer_params == 14336 * 4096
    assert summary.vision_params == 3 * 1024 * 1024
    assert summary.params == 8_030_261_248


def test_a_fine_tune_with_a_size_in_its_name_is_never_guessed(catalog: Catalog) -> None:
    """Until its files are read the id is refused; once added it is planned as read, under its own id."""
    with pytest.raises(ParseError) as caught:
        parse_request("acme-ml/llama-3.1-8b-sft fp8 8k", catalog)
    assert wanted_repo(caught.value) == "acme-ml/llama-3.1-8b-sft"
    config = CONFIGS["meta-llama/Llama-3.1-8B-Instruct"]
    extended = with_models(catalog, [hub_spec(files("acme-ml/llama-3.1-8b-sft", config, tensors(config)))])
    turn = respond("acme-ml/llama-3.1-8b-sft fp8 8k", None, extended)
    assert turn.kind == "answer" and turn.plan is not None and turn.request is not None
    assert turn.request.model == "acme-ml/llama-3.1-8b-sft"
    assert turn.plan.top is not None and "vllm serve acme-ml/llama-3.1-8b-sft " in (turn.plan.top.vllm_command or "")
    assert [n for n in turn.plan.assumptions if n.code == "hub_model"][0].revision == REVISION
    assert extended.digest != catalog.digest and len(extended.models) == len(catalog.models) + 1
    # a remembered request for the repo, asked without it in the catalog, waits for the Hub again
    later = answer(Request(model="acme-ml/llama-3.1-8b-sft"), None, catalog)
    assert wanted_repo(later.error) == "acme-ml/llama-3.1-8b-sft"


@pytest.mark.parametrize(
    "error",
    [
        HeadroomError("hub_gated", repo="a/b"),
        HeadroomError("hub_not_found", repo="a/b"),
        HeadroomError("hub_unreachable", repo="a/b", reason="timed out"),
        HeadroomError("hub_rate_limited", repo="a/b"),
        HeadroomError("hub_offline", repo="a/b"),
        HeadroomError("hub_no_safetensors", repo="a/b"),
        HeadroomError("hub_no_config", repo="a/b"),
        HeadroomError("hub_config_incomplete", repo="a/b", missing=["vocab_size"]),
        HeadroomError("hub_unsupported", repo="a/b", feature="linear attention"),
        HeadroomError("hub_quantization_unsupported", repo="a/b", method="hqq"),
        HeadroomError("hub_shape_mismatch", repo="a/b", config_params=10, header_params=20, revision="r"),
    ],
)
def test_every_hub_error_is_worded_with_the_repo(error: HeadroomError) -> None:
    words = Views().error(error)
    assert "a/b" in words and "hub_" not in words


def test_a_multimodal_model_reads_its_text_config_and_counts_its_vision_tower() -> None:
    text = CONFIGS["meta-llama/Llama-3.1-8B-Instruct"]
    config = {"architectures": ["Mistral3ForConditionalGeneration"], "model_type": "mistral3", "text_config": text,
              "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24}, "torch_dtype": "bfloat16"}  # fmt: skip
    entries = {f"language_model.{k}": v for k, v in tensors(text).items()}
    entries["vision_tower.transformer.layers.0.attention.q_proj.weight"] = ("BF16", [1024, 1024])
    entries["multi_modal_projector.linear_1.weight"] = ("BF16", [4096, 1024])
    spec = hub_spec(files("acme-ml/vision-sft-8b", config, entries))
    assert spec.arch.layers == 32 and spec.arch.kv_heads == 8
    assert spec.arch.vision_params == 1024 * 1024 + 4096 * 1024  # decoder layers of the tower are not text layers


def test_an_fp8_checkpoint_counts_its_weights_not_its_scales() -> None:
    config = copy.deepcopy(CONFIGS["Qwen/Qwen2.5-7B-Instruct"])
    config["quantization_config"] = {"quant_method": "compressed-tensors", "format": "float-quantized",
                                     "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float"}}}}  # fmt: skip
    entries: Tensors = {}
    for name, (dtype, shape) in tensors(config).items():
        quantized = ".layers." in name and name.endswith("proj.weight")
        entries[name] = ("F8_E4M3" if quantized else dtype, shape)
        if quantized:
            entries[name.removesuffix("weight") + "weight_scale"] = ("BF16", [shape[0], 1])
    spec = hub_spec(files("acme-ml/qwen2.5-7b-sft-fp8-dynamic", config, entries))
    assert spec.dtype == "fp8" and spec.hub_method == "compressed-tensors"
    assert spec.published_params_b == pytest.approx(7.616, abs=0.001)


def test_a_hub_model_never_stands_in_for_a_bare_size(catalog: Catalog) -> None:
    config = CONFIGS["meta-llama/Llama-3.1-8B-Instruct"]
    spec = hub_spec(files("acme-ml/llama-3.1-8b-sft", config, tensors(config)))
    spec = spec._replace(family="llama-3.3", size="8B")  # even in the first family a size means
    extended = with_models(catalog, [spec])
    assert parse_request("8B fp8", extended).model == parse_request("8B fp8", catalog).model != spec.id


def test_a_block_fp8_hub_checkpoint_is_planned_only_at_a_tp_that_keeps_blocks_whole(catalog: Catalog) -> None:
    """quantization_config.weight_block_size reaches the placement rule (vLLM fp8_utils.validate_fp8_block_shape)."""
    config = copy.deepcopy(CONFIGS["deepseek-ai/DeepSeek-V2-Lite-Chat"])
    config["quantization_config"] = {"quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": [128, 128]}
    entries: Tensors = {}
    for name, (dtype, shape) in tensors(config).items():
        quantized = ".layers." in name and name.endswith("proj.weight")
        entries[name] = ("F8_E4M3" if quantized else dtype, shape)
        if quantized:
            entries[name.removesuffix("weight") + "weight_scale_inv"] = ("F32", [-(-shape[0] // 128), -(-shape[1] // 128)])
    spec = hub_spec(files("acme-ml/deepseek-v2-lite-fp8-block", config, entries))
    extended = with_models(catalog, [spec])
    assert spec.weight_block == 128 and extended.weight_blocks[spec.id] == 128
    refused = respond("acme-ml/deepseek-v2-lite-fp8-block on g6e.12xlarge tp 2", None, extended)  # experts 1,408 / 2
    assert refused.error is not None and refused.error.code == "tp_splits_fp8_block"
    planned = respond("acme-ml/deepseek-v2-lite-fp8-block on g6e.12xlarge", None, extended)
    assert planned.plan is not None and all(c.tp == 1 for c in planned.plan.candidates)
    config["quantization_config"]["weight_block_size"] = [-128, -128]  # the spec is checked as the catalog's are
    with pytest.raises(InvalidRequest) as err:
        hub_spec(files("acme-ml/deepseek-v2-lite-fp8-block", config, entries))
    assert err.value.code == "hub_unsupported"

"""Speculative drafters (a draft checkpoint, MTP layers) and LoRA slots in vLLM's start-up memory (issue 10)."""

from __future__ import annotations

import pytest

from engine.catalog.loader import Catalog
from engine.catalog.resolve import resolve_model
from engine.errors import InvalidRequest
from engine.extra_memory import lora_bytes
from engine.parse import parse_request
from engine.serve_command import read_command
from engine.served import GIB, ServedModel, Stage, pipeline_stages, serve
from engine.service import respond
from engine.serving_extras import NO_EXTRAS, Draft, Extras, Lora


def model(catalog: Catalog, name: str, weights: str | None = None, extras: Extras = NO_EXTRAS) -> ServedModel:
    return serve(resolve_model(catalog, name).spec, weights, "auto", extras=extras)


def test_draft_layers_add_their_pages_to_every_block(catalog: Catalog) -> None:
    """vllm/v1/kv_cache_interface.py UniformTypeKVCacheSpecs.page_size_bytes@v0.21.0 sums every layer's
    page (target and drafter alike) and get_kv_cache_config_from_groups divides the pool by that sum."""
    drafter = model(catalog, "llama-3.2-1b")  # 16 layers, 8 KV heads of 64
    target = model(catalog, "llama-3.3-70b", "fp8", Extras(draft=Draft(4, model=drafter)))
    assert target.kv_bytes_per_token(8) == 80 * 2 * 1 * 128 * 2 + 16 * 2 * 1 * 64 * 2
    plain = model(catalog, "llama-3.3-70b", "fp8")
    assert target.kv_bytes_per_request(8192, 8, 8192, None, 16) == pytest.approx(
        plain.kv_bytes_per_request(8192, 8, 8192, None, 16) + 8192 * 16 * 2 * 1 * 64 * 2
    )


def test_draft_weights_sit_on_every_rank_of_the_last_stage(catalog: Catalog) -> None:
    drafter = model(catalog, "llama-3.2-1b")
    target = model(catalog, "llama-3.3-70b", "fp8", Extras(draft=Draft(1, model=drafter)))
    plain = model(catalog, "llama-3.3-70b", "fp8")
    first, last = pipeline_stages(80, 2)
    own = drafter.stage_weight_bytes(pipeline_stages(16, 1)[0], 4)
    assert target.stage_weight_bytes(last, 4) == pytest.approx(plain.stage_weight_bytes(last, 4) + own)
    assert target.stage_weight_bytes(first, 4) == plain.stage_weight_bytes(first, 4)


def test_mtp_adds_one_decoder_layer_eh_proj_and_its_latent_cache(catalog: Catalog) -> None:
    """vllm/model_executor/models/deepseek_mtp.py DeepSeekMultiTokenPredictorLayer@v0.21.0: enorm, hnorm,
    eh_proj nn.Linear(2h, h) (not sharded), a DeepseekV2DecoderLayer; shared_head's norm; embeddings and
    lm_head shared with the target (llm_base_proposer._maybe_share_embeddings / _maybe_share_lm_head)."""
    mtp = model(catalog, "deepseek-v3", "fp8", Extras(draft=Draft(1, mtp_layers=1)))
    plain = model(catalog, "deepseek-v3", "fp8")
    whole = pipeline_stages(61, 1)[0]
    last_layer = plain.stage_weight_bytes(Stage(60, 1, False, False), 8) - plain._rope_cache_bytes()
    extra = last_layer + (2 * 7168**2 + 3 * 7168) * 2
    assert mtp.stage_weight_bytes(whole, 8) == pytest.approx(plain.stage_weight_bytes(whole, 8) + extra)
    assert mtp.kv_bytes_per_token(8) == plain.kv_bytes_per_token(8) * 62 // 61  # MLA latent, one more layer


def test_words_flags_and_commands_name_the_drafter(catalog: Catalog) -> None:
    asked = parse_request("llama 3.3 70b fp8 with a 1B draft, 4 speculative tokens", catalog)
    assert (asked.model, asked.draft, asked.speculative_tokens) == ("meta-llama/Llama-3.3-70B-Instruct", "1b", 4)
    reply = respond("llama 3.3 70b fp8 8k with a 1B draft, 4 speculative tokens on p5.48xlarge", None, catalog)
    assert reply.kind == "answer", reply.error
    command = reply.plan.candidates[0].vllm_command
    assert command is not None
    assert command.endswith(
        """--speculative-config '{"model":"meta-llama/Llama-3.2-1B-Instruct","num_speculative_tokens":4}'"""
    )
    back = read_command(command)
    assert (back.fields["draft"], back.fields["speculative_tokens"], back.not_modelled) == (
        "meta-llama/Llama-3.2-1B-Instruct", 4, []
    )  # fmt: skip
    eagle = read_command("""vllm serve x --speculative-config '{"method":"eagle3","model":"y"}'""")
    assert "draft" not in eagle.fields and eagle.not_modelled  # an EAGLE head is reported, never guessed
    mtp = read_command("""vllm serve deepseek-ai/DeepSeek-R1 --speculative-config '{"method":"deepseek_mtp"}'""")
    assert mtp.fields["draft"] == "mtp"


def test_mtp_needs_layers_the_checkpoint_ships(catalog: Catalog) -> None:
    reply = respond("llama 3.1 8b with mtp", None, catalog)
    assert reply.kind == "error" and isinstance(reply.error, InvalidRequest)
    assert reply.error.code == "no_mtp_layers"


def test_lora_stacks_follow_create_lora_weights(catalog: Catalog) -> None:
    """vllm/lora/layers/base_linear.py BaseLinearLayerWithLoRA.create_lora_weights@v0.21.0: per slice,
    A = max_loras x rank x input and B = max_loras x output x rank; column-parallel layers shard B's
    output, row-parallel ones A's input (column_parallel_linear.py / row_parallel_linear.py);
    VocabParallelEmbeddingWithLoRA and LogitsProcessorWithLoRA keep the whole vocabulary."""
    loras, rank = 8, 64
    llama = model(catalog, "llama-3.1-8b", extras=Extras(lora=Lora(loras, rank)))
    h, inter, vocab, layers = 4096, 14336, 128256, 32
    for tp in (1, 2):
        q, kv = 4096 // tp, 1024 // tp
        qkv = 3 * rank * h + rank * (q + 2 * kv)
        o_proj = rank * q + h * rank
        gate_up = 2 * rank * h + rank * 2 * inter // tp
        down = rank * inter // tp + h * rank
        per_layer = qkv + o_proj + gate_up + down
        embeddings = vocab * rank + h * rank
        logits = rank * h + vocab * rank
        expected = (layers * per_layer + embeddings + logits) * loras * 2
        assert lora_bytes(llama, pipeline_stages(32, 1)[0], tp) == expected
    plain = model(catalog, "llama-3.1-8b")
    whole = pipeline_stages(32, 1)[0]
    assert llama.stage_weight_bytes(whole, 1) - plain.stage_weight_bytes(whole, 1) == pytest.approx(
        2.75 * GIB, abs=0.01 * GIB
    )


def test_lora_in_words_flags_and_commands(catalog: Catalog) -> None:
    asked = parse_request("llama 3.1 8b lora rank 64 x 8", catalog)
    assert (asked.lora_rank, asked.max_loras) == (64, 8)
    reply = respond("llama 3.1 8b 8k lora rank 64 x 8 on g6e.xlarge", None, catalog)
    assert reply.kind == "answer", reply.error
    command = reply.plan.candidates[0].vllm_command
    assert command is not None and command.endswith("--enable-lora --max-loras 8 --max-lora-rank 64")
    back = read_command(command)
    assert (back.fields["max_loras"], back.fields["lora_rank"]) == (8, 64)
    unused = read_command("vllm serve meta-llama/Llama-3.1-8B-Instruct --max-loras 4")
    assert "max_loras" not in unused.fields and unused.ignored == ["--max-loras 4"]  # no --enable-lora: no slots
    refused = respond("llama 3.1 8b lora rank 48", None, catalog)
    assert refused.kind == "error"  # vLLM's MaxLoRARanks has no 48


def test_cli_flags_set_the_extras() -> None:
    from bot.cli_args import build_parser, flags_of

    args = build_parser().parse_args(
        ["plan", "llama 3.3 70b", "--draft", "llama-3.2-1b", "--speculative-tokens", "3", "--max-loras", "4",
         "--max-lora-rank", "32", "--text-only"]
    )  # fmt: skip
    flags = flags_of(args)
    assert (flags["draft"], flags["speculative_tokens"], flags["max_loras"], flags["lora_rank"], flags["text_only"]) == (
        "llama-3.2-1b", 3, 4, 32, True
    )  # fmt: skip
    config = build_parser().parse_args(
        ["plan", "x", "--speculative-config", '{"method": "mtp", "num_speculative_tokens": 2}']
    )
    assert flags_of(config) == {"draft": "mtp", "speculative_tokens": 2}


def test_a_pasted_start_up_is_diagnosed_with_its_drafter_and_lora(catalog: Catalog) -> None:
    from engine.paste_reader import read_paste
    from engine.service import diagnosis

    paste = (
        "vllm serve meta-llama/Llama-3.1-8B-Instruct --enable-lora --max-loras 8 --max-lora-rank 64 "
        """--speculative-config '{"model":"meta-llama/Llama-3.2-1B-Instruct","num_speculative_tokens":3}'\n"""
        "INFO 01-01 00:00:00 gpu_worker.py:298] Available KV cache memory: 50.0 GiB\n"
    )
    d = diagnosis(read_paste(paste), catalog, {"instance": "p5.4xlarge"}).diagnosis
    assert (d.request.draft, d.request.speculative_tokens, d.request.max_loras, d.request.lora_rank) == (
        "meta-llama/Llama-3.2-1B-Instruct", 3, 8, 64
    )  # fmt: skip
    assert d.candidate.vllm_command is not None and "--max-lora-rank 64" in d.candidate.vllm_command


def test_speculative_tokens_without_a_drafter_are_said_not_dropped(catalog: Catalog) -> None:
    reply = respond("llama 3.1 8b 4 speculative tokens on g6e.xlarge", None, catalog)
    assert reply.kind == "answer", reply.error
    assert any(n.code == "speculative_without_draft" and n.tokens == 4 for n in reply.plan.assumptions)
    assert "--speculative-config" not in (reply.plan.candidates[0].vllm_command or "")


def test_a_follow_up_switches_the_extras_off(catalog: Catalog) -> None:
    first = respond("llama 3.3 70b fp8 8k with a 1B draft lora rank 16 x 2 on p5.48xlarge", None, catalog)
    assert first.kind == "answer" and first.request.draft == "1b" and first.request.max_loras == 2
    second = respond("no draft and no lora", first.memory, catalog)
    assert second.kind == "answer", second.error
    assert (second.request.draft, second.request.max_loras, second.request.lora_rank) == (None, None, None)
    command = second.plan.candidates[0].vllm_command or ""
    assert "--speculative-config" not in command and "--enable-lora" not in command


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--speculative-config", "[]"], "'[]' is not a JSON object for --speculative-config; vLLM takes e.g."),
        (["vllm serve meta-llama/Llama-3.1-8B-Instruct --limit-mm-per-prompt image=x"],
         "'image=x' is not a limit per modality for --limit-mm-per-prompt"),
        (["vllm serve meta-llama/Llama-3.1-8B-Instruct --max-num-seqs abc"],
         "'abc' is not a number for the command's --max-num-seqs setting"),
    ],
)  # fmt: skip
def test_a_bad_flag_value_is_named_by_its_flag_and_what_it_should_be(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    extra = [] if argv[0].startswith("vllm") else ["--model", "llama-3.1-8b"]
    assert main(["plan", *argv, *extra, "--instance", "g6.xlarge"]) == 2
    assert said in capsys.readouterr().err

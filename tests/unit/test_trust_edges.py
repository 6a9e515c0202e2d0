"""Trust edges found by a review as a demanding user: each answer changes the request, refuses it, or says why."""

from __future__ import annotations

import pytest

from engine.catalog.loader import Catalog
from engine.paste_reader import read_paste
from engine.service import diagnosis, respond
from tests.support import VIEWS


def ask(catalog: Catalog, text: str, **flags: object):  # noqa: ANN201
    return respond(text, None, catalog, flags or None)


def test_enforce_eager_false_in_a_pasted_command_keeps_cuda_graphs(catalog: Catalog) -> None:
    # vLLM 0.24: the V1 model runner, whose graph estimate is reserved (0.25+ runs dense models on V2: none)
    off = ask(catalog, "vllm serve meta-llama/Llama-3.1-8B-Instruct --enforce-eager=false", instance="g6e.xlarge",
              vllm_version="0.24")  # fmt: skip
    on = ask(catalog, "vllm serve meta-llama/Llama-3.1-8B-Instruct --enforce-eager", instance="g6e.xlarge",
             vllm_version="0.24")  # fmt: skip
    assert not off.request.enforce_eager and on.request.enforce_eager
    assert "--enforce-eager" not in off.plan.top.vllm_command and off.plan.top.cudagraph_gib_per_gpu > 0
    assert on.plan.top.cudagraph_gib_per_gpu == 0


def test_a_diagnosis_plans_with_the_memory_flags_the_paste_used(catalog: Catalog) -> None:
    paste = ("$ vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 32768 --max-num-seqs 32 --enforce-eager\n"
             "ERROR 11-20 10:00:20 [core.py:700] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.\n")  # fmt: skip
    d = diagnosis(read_paste(paste), catalog, {"instance": "g6.xlarge"}).diagnosis
    assert d.request.max_num_seqs == 32 and d.request.enforce_eager
    assert d.candidate.cudagraph_gib_per_gpu == 0
    assert "--max-num-seqs 32 --enforce-eager" in d.candidate.vllm_command


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("llama 3.1 8b batched tokens 100", "also set max-num-seqs 100 or less"),
        ("vllm serve meta-llama/Llama-3.1-8B-Instruct --max-num-seqs 512 --max-num-batched-tokens 256",
         "--max-num-batched-tokens 256 below --max-num-seqs 512"),
    ],
)  # fmt: skip
def test_a_token_budget_below_the_sequence_limit_is_refused_as_vllm_refuses_it(catalog: Catalog, text, says) -> None:
    turn = ask(catalog, text)
    assert turn.kind == "error" and says in VIEWS.error(turn.error)
    fine = ask(catalog, "llama 3.1 8b batched tokens 512 max-num-seqs 64")
    assert "--max-num-seqs 64 --max-num-batched-tokens 512" in fine.plan.top.vllm_command


def test_a_named_draft_with_another_vocabulary_is_refused(catalog: Catalog) -> None:
    turn = ask(catalog, "qwen3 32b draft llama-3.2-1b on g6e.12xlarge")
    assert turn.kind == "error" and turn.error.code == "draft_vocab_differs"
    assert "128,256" in VIEWS.error(turn.error) and "151,936" in VIEWS.error(turn.error)


@pytest.mark.parametrize("text", ["llama 3.1 8b -4 users", "llama 3.1 8b -32k context", "llama 3.1 8b - 4 users"])
def test_negative_counts_are_refused_not_read_without_their_sign(catalog: Catalog, text: str) -> None:
    turn = ask(catalog, text)
    assert turn.kind == "error" and turn.error.code == "negative_value"


def test_eager_the_adjective_is_not_eager_the_setting(catalog: Catalog) -> None:
    assert not ask(catalog, "I am eager to serve llama 3.1 8b on g6.xlarge").request.enforce_eager
    assert ask(catalog, "llama 3.1 8b eager on g6.xlarge").request.enforce_eager


def test_eager_and_cpu_offload_say_the_speeds_ignore_them_and_offload_checks_host_ram(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.1 8b eager cpu offload 100gb on g6.xlarge")
    codes = {n.code for n in turn.plan.warnings}
    assert {"eager_speed", "cpu_offload_speed"} <= codes
    ram = [n for n in turn.plan.top.caveats if n.code == "cpu_offload_ram"]
    assert ram and ram[0].offload_gib < 16  # capped at the weights vLLM can offload, not the 100 GB asked


def test_a_pinned_instance_the_region_lacks_is_priced_as_not_offered(catalog: Catalog) -> None:
    text = VIEWS.terminal(ask(catalog, "llama 3.1 8b on g7e.2xlarge in sa-east-1").plan)
    assert "EC2 does not offer g7e.2xlarge in sa-east-1" in text
    assert "Capacity Blocks" not in text and "ranked only the 0" not in text


@pytest.mark.parametrize(("text", "model"), [("qwen3 235b fp8", "Qwen/Qwen3-235B-A22B"),
                                             ("qwen3 next 80b", "Qwen/Qwen3-Next-80B-A3B-Instruct")])  # fmt: skip
def test_loose_names_of_catalog_models_resolve(catalog: Catalog, text: str, model: str) -> None:
    assert ask(catalog, text).request.model == model


def test_a_region_shaped_word_that_is_no_region_is_refused(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.1 8b in mars-east-1")
    assert turn.kind == "error" and "'mars-east-1' is not an AWS region" in VIEWS.error(turn.error)


def test_a_follow_up_reports_the_flag_it_changed_and_the_price_it_moved(catalog: Catalog) -> None:
    first = ask(catalog, "llama 3.1 8b on g6e.12xlarge")
    eager = respond("with eager", first.memory, catalog)
    said = [VIEWS.say(n) for n in eager.changes]
    assert "enforce-eager: off → on" in said
    tokyo = respond("in tokyo", eager.memory, catalog)
    assert any(n.code == "price" and n.old == pytest.approx(10.49, abs=0.01) and n.new > n.old for n in tokyo.changes)


def test_one_host_pipelines_when_its_tp_is_capped_and_pp_is_read_in_words(catalog: Catalog) -> None:
    """Qwen3-235B's FP8 blocks allow TP 4 at most; on 8 L40S TP4 x 2 replicas does not load, TP4 PP2 does."""
    turn = ask(catalog, "qwen3 235b a22b fp8 on g6e.48xlarge")
    (top,) = turn.plan.candidates
    assert (top.tp, top.pp, top.feasible) == (4, 2, True)
    assert "--tensor-parallel-size 4 --pipeline-parallel-size 2" in top.vllm_command
    assert ask(catalog, "qwen3 235b fp8 tp 4 pp 2 on g6e.48xlarge").request.pp == 2
    single = ask(catalog, "llama 3.1 8b on g6e.12xlarge").plan.top  # what fits without stages keeps one stage
    assert single.pp == 1


def test_a_pasted_quantization_the_checkpoint_is_not_stored_in_is_said_to_fail_as_written(catalog: Catalog) -> None:
    turn = ask(catalog, "vllm serve meta-llama/Llama-3.1-8B-Instruct --quantization awq")
    (remark,) = [r for r in turn.remarks if r.code == "command_needs_stored_format"]
    assert "vLLM would refuse to start" in VIEWS.say(remark)
    assert turn.plan.top.vllm_command.startswith("vllm serve hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4 ")
    stored = ask(catalog, "vllm serve hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4 --quantization awq")
    assert not [r for r in stored.remarks if r.code == "command_needs_stored_format"]  # the right checkpoint: no remark


def test_spot_in_words_is_answered_with_what_is_known_about_spot_prices(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.1 8b on spot in us-west-2")
    assert turn.request.spot and not turn.unread
    (said,) = [n for n in turn.plan.warnings if n.code == "spot_unknown"]
    assert said.region == "us-west-2" and "catalog refresh" in VIEWS.say(said)
    assert not [n for n in ask(catalog, "llama 3.1 8b in us-west-2").plan.warnings if n.code == "spot_unknown"]


def test_a_model_flag_or_command_that_contradicts_the_words_is_refused(catalog: Catalog) -> None:
    flag = ask(catalog, "qwen3 8b", model="llama-3.3-70b")
    assert flag.kind == "error" and flag.error.params["field"] == "model"
    assert "two models" in VIEWS.error(flag.error)
    pasted = ask(catalog, "llama 3.3 70b vllm serve Qwen/Qwen3-8B")
    assert pasted.kind == "error" and pasted.error.code == "conflicting_values"
    same = ask(catalog, "llama 3.3 70b fp8", model="meta-llama/Llama-3.3-70B-Instruct")  # one model, said twice
    assert same.kind == "answer"
    release = "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic"  # a pre-quantized release, in the words and the flag
    for flag in (release, "llama-3.3-70b"):
        turn = ask(catalog, f"{release} 8k", model=flag)
        assert turn.kind == "answer" and turn.request.weights == "fp8", flag


def test_unknown_command_flags_are_not_called_harmless(catalog: Catalog) -> None:
    turn = ask(catalog, "vllm serve meta-llama/Llama-3.1-8B-Instruct --tp 2 --port 8000", instance="g6e.12xlarge")
    codes = {r.code: r.flags for r in turn.remarks}
    assert codes["command_ignored"] == ["--port 8000"] and codes["command_unknown_flags"] == ["--tp 2"]
    assert "may change memory" in VIEWS.say(next(r for r in turn.remarks if r.code == "command_unknown_flags"))


def test_a_precision_after_a_sized_draft_is_the_weights_not_the_draft(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.1 70b with a 1b draft int4")
    assert turn.kind == "answer" and turn.request.weights == "int4" and turn.request.draft == "1b"


def test_a_draft_not_smaller_than_the_model_is_said(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.2 1b", draft="llama-3.3-70b")
    (said,) = [n for n in turn.plan.assumptions + turn.plan.warnings if n.code == "draft_not_smaller"]
    assert said.draft_b > said.model_b and "costs more than it saves" in VIEWS.say(said)
    assert not [n for n in ask(catalog, "llama 3.1 8b with a 1b draft").plan.assumptions if n.code == "draft_not_smaller"]

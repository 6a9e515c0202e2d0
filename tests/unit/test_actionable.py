"""Answers you can act on: one regression test per item of issue 9, through the conversation service."""

from __future__ import annotations

import pytest

from engine.catalog.loader import Catalog
from engine.ranking import plan
from engine.request import Request
from engine.service import respond
from tests.support import VIEWS, words


def ask(catalog: Catalog, text: str, **flags: object):  # noqa: ANN201
    return respond(text, None, catalog, flags or None)


# 1. the start command keeps the precision asked for in words
@pytest.mark.parametrize(
    ("text", "repo"),
    [
        ("qwen2.5 72b awq 32k under $10/h", "Qwen/Qwen2.5-72B-Instruct-AWQ"),
        ("llama 3.3 70b nvfp4", "nvidia/Llama-3.3-70B-Instruct-FP4"),
        ("llama 3.1 70b int4 on g6.12xlarge", "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4"),
    ],
)
def test_the_command_names_a_checkpoint_in_the_planned_precision(catalog: Catalog, text: str, repo: str) -> None:
    turn = ask(catalog, text)
    assert turn.plan.top and turn.plan.top.vllm_command.startswith(f"vllm serve {repo} ")
    assert any(a.code == "release_checkpoint" and a.repo == repo for a in turn.plan.assumptions)


def test_int4_instead_in_chat_changes_the_command(catalog: Catalog) -> None:
    first = ask(catalog, "qwen2.5 72b 32k")
    then = respond("int4 instead", first.memory, catalog)
    assert then.plan.top.vllm_command.startswith("vllm serve Qwen/Qwen2.5-72B-Instruct-AWQ ")


def test_two_replicas_in_a_follow_up_are_said_and_started(catalog: Catalog) -> None:
    first = ask(catalog, "llama 3.1 8b bf16 on g6e.12xlarge")
    then = respond("2 replicas", first.memory, catalog)
    top = then.plan.top
    assert (top.tp, top.replicas) == (2, 2) and "--tensor-parallel-size 2 --data-parallel-size 2 " in top.vllm_command
    assert "replicas: default → 2" in [words(n) for n in then.changes]
    assert "(the replica count you set)" in VIEWS.terminal(then.plan)


def test_no_known_checkpoint_means_no_command_and_a_plain_warning(catalog: Catalog) -> None:
    turn = ask(catalog, "gemma 2 9b int8")
    assert turn.plan.top is not None and turn.plan.top.vllm_command is None
    assert any(w.code == "no_known_checkpoint" for w in turn.plan.warnings)
    assert "no command" in VIEWS.terminal(turn.plan)


# 2. multi-replica layouts start every replica
def test_a_multi_replica_layout_starts_all_replicas(catalog: Catalog) -> None:
    turn = ask(catalog, "cheapest for llama 3.1 8b bf16 32k with 100 users")
    layouts = [c for c in turn.plan.candidates if c.feasible and c.replicas > 1]
    assert layouts
    for c in layouts:
        assert f"--data-parallel-size {c.replicas}" in c.vllm_command


# 3. placement optimises what was asked
def test_max_users_picks_the_layout_that_holds_the_most_requests(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.3 70b fp8 max users on g6e.12xlarge")
    (top,) = turn.plan.candidates
    assert top.tp == 4 and top.max_concurrency * top.replicas > 30


def _layouts(catalog: Catalog, request: Request, instance: str) -> list:
    pinned = request.replace(instance=instance)
    return [plan(pinned.replace(tp=tp), catalog, advise=False).candidates[0] for tp in (1, 2, 4, 8)
            if tp <= catalog.instances[instance].gpu_count]  # fmt: skip


@pytest.mark.parametrize("instance", ["g6e.12xlarge", "g6e.48xlarge", "p4d.24xlarge", "g6.48xlarge", "g7e.24xlarge"])
def test_for_max_the_chosen_layout_holds_at_least_as_many_requests_as_any_other(catalog: Catalog, instance: str) -> None:
    request = Request(model="llama-3.1-8b", context_tokens=16384, concurrency="max")
    chosen = plan(request.replace(instance=instance), catalog).candidates[0]
    for other in _layouts(catalog, request, instance):
        if other.feasible:
            assert chosen.max_concurrency * chosen.replicas >= other.max_concurrency * other.replicas - 1e-9


@pytest.mark.parametrize("instance", ["g6e.12xlarge", "g6e.48xlarge", "p4d.24xlarge", "g6.48xlarge", "g7e.24xlarge"])
def test_at_a_load_the_chosen_layout_has_the_lowest_cost_per_token(catalog: Catalog, instance: str) -> None:
    request = Request(model="llama-3.1-8b", context_tokens=8192, concurrency=24)
    chosen = plan(request.replace(instance=instance), catalog).candidates[0]
    meeting = [c for c in _layouts(catalog, request, instance) if c.verdict == "fits"]
    assert chosen.verdict == "fits" and meeting
    assert chosen.usd_per_million_tokens <= min(c.usd_per_million_tokens for c in meeting) + 1e-9


# 4. GPU pins map to real instances
def test_two_l40s_is_not_priced_as_an_instance_that_does_not_exist(catalog: Catalog) -> None:
    turn = ask(catalog, "70b fp8 8k on 2x L40S")
    (only,) = turn.plan.candidates
    assert only.instance is None and only.usd_per_hour is None
    (warning,) = [w for w in turn.plan.warnings if w.code == "no_instance_with_gpus"]
    assert warning.nearest[0]["instance"] == "g6e.12xlarge"
    text = VIEWS.terminal(turn.plan)
    assert "the cheapest instance that fits" not in text and "no EC2 instance has exactly 2 × NVIDIA L40S" in text


# 5. no silent substitutions, no dropped words, impossible values refused
@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("llama 5 70b", "no_model"),
        ("gemma 4 27b", "no_model"),
        ("qwen4 32b", "no_model"),
        ("1000000B model", "bare_size_unknown"),
        ("acme-ml/some-finetune-13b fp8", "unknown_hub_model"),
        ("llama 3.1 8b 0 context", "invalid_values"),
        ("llama 3.1 8b fp3", "unknown_precision"),
        ("llama 3.1 8b util 1.5", "invalid_values"),
        ("70B fp8 999999999k context", "invalid_values"),
    ],
)
def test_what_cannot_be_planned_as_written_is_refused(catalog: Catalog, text: str, code: str) -> None:
    turn = ask(catalog, text)
    assert (turn.kind, turn.error.code) == ("error", code)
    assert VIEWS.error(turn.error)  # worded


def test_every_word_is_used_or_said_back(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.3 70b fp8 frobnicate 8k")
    assert turn.unread == ("frobnicate",)
    assert "Not understood, so not used: 'frobnicate'" in VIEWS.terminal(turn.plan, unread=turn.unread)


def test_a_misspelt_model_is_said_to_be_read_as_the_near_one(catalog: Catalog) -> None:
    turn = ask(catalog, "lama 3.3 70b fp8")
    assert turn.request.model_note.code == "fuzzy_model"
    assert "'lama 3.3 70b' read as Llama 3.3 70B Instruct" in words(turn.request.model_note)


def test_a_newer_vllm_than_modelled_is_stated(catalog: Catalog) -> None:
    turn = ask(catalog, "", model="llama-3.1-8b", vllm_version="0.99")
    assert any(w.code == "vllm_newer_than_modelled" for w in turn.plan.warnings)


def test_family_names_without_their_suffix_work(catalog: Catalog) -> None:
    only = ask(catalog, "llama 3.1 8b only p6")
    assert {c.family for c in only.plan.candidates} == {"p6-b200", "p6-b300"}
    excluded = ask(catalog, "llama 3.1 8b exclude p6e")
    assert "p6e-gb200" not in {c.family for c in excluded.plan.candidates}


def test_a_count_of_instances_is_read_and_planned(catalog: Catalog) -> None:
    turn = ask(catalog, "deepseek v3 on 2x p5.48xlarge")
    (only,) = turn.plan.candidates
    assert (only.instance, only.nodes, only.feasible) == ("2 × p5.48xlarge", 2, True)


# 6. hardware rules vLLM enforces (tested in test_ranking: Gemma FP16 refusal, --dtype half, Marlin on sm_75)


# 7. every fix re-planned, and one that does not suffice says so with the number
def test_fixes_are_replanned_and_say_when_they_fall_short(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.3 70b fp8 20k on p5.4xlarge")
    fixes = {f.lever: f for f in turn.plan.fixes}
    kv = fixes["kv_fp8"]
    assert (kv.enough, kv.kv_tokens, kv.short_tokens) == (False, 19376, 1104)
    assert "--kv-cache-dtype fp8: on p5.4xlarge, 19,376 tokens of KV, still 1,104 short" in words(kv)
    for lever, fix in fixes.items():  # each one is what the engine says for that change
        change = {"kv_fp8": {"kv_dtype": "fp8"}, "weights": {"weights": fix.value},
                  "context": {"context_tokens": fix.value}, "utilization": {"gpu_memory_utilization": fix.value}}[lever]  # fmt: skip
        base = {"model": "llama-3.3-70b", "weights": "fp8", "instance": "p5.4xlarge", "tp": 1, "context_tokens": 20480}
        again = plan(Request(**{**base, **change}), catalog)
        assert again.candidates[0].kv_cache_tokens == fix.kv_tokens, lever


def test_no_fix_quotes_a_rule_of_thumb(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.3 70b bf16 8k on p5.4xlarge")
    assert turn.plan.fixes and all(f.code == "fix" for f in turn.plan.fixes)
    assert "~66" not in VIEWS.terminal(turn.plan) and "about twice" not in VIEWS.terminal(turn.plan)


# 8. the speed text agrees with the numbers for MoE
def test_moe_decode_text_quotes_the_bytes_a_step_reads(catalog: Catalog) -> None:
    turn = ask(catalog, "deepseek v3 fp8 on p5en")
    top = turn.plan.top
    assert top.weights_gib_read_per_step < top.weights_gib_per_gpu / 4
    step_s = (top.weights_gib_read_per_step + top.kv_gib_read_per_step) * 2**30 / (top.gpu_bandwidth_gbps * 1e9)
    assert top.decode_tokens_per_s_per_user < 1 / step_s  # the speed cannot beat streaming what a step reads
    assert f"every step reads {top.weights_gib_read_per_step:.1f} GiB of weights" in VIEWS.terminal(turn.plan)


# 9. per-GPU figures, and a pinned TP skips the GPU sets it cannot use
def test_kv_needed_for_a_request_that_does_not_fit_is_per_gpu(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.3 70b bf16 128k on g7e.12xlarge tp 2")
    (only,) = turn.plan.candidates
    assert only.verdict == "no_kv_room" and 19 < only.kv_needed_gib_per_gpu < 21


def test_a_pinned_tp_skips_sets_it_cannot_run_on(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.1 8b tp 8")
    assert turn.kind == "answer" and turn.plan.candidates
    assert {c.gpu_count % 8 for c in turn.plan.candidates} == {0}
    tp3 = ask(catalog, "llama 3.1 8b tp 3")
    assert tp3.error.code == "tp_invalid" and "B300" not in VIEWS.error(tp3.error)


# 10. chat state after a filter: a comparison never falls back to other instances
def test_compare_after_a_filter_stays_on_what_was_compared(catalog: Catalog) -> None:
    first = ask(catalog, "llama 3.3 70b int4 32k fp8 kv 64 users")
    second = respond("only g6e", first.memory, catalog)
    third = respond("compare with g6e.24xlarge", second.memory, catalog)
    assert {c.instance_type for c in third.plan.candidates} <= {"g6e.24xlarge", second.memory.top}
    assert all(c.nodes == 1 for c in third.plan.candidates)


# 11. smaller
def test_does_not_start_is_told_apart_from_requests_that_wait(catalog: Catalog) -> None:
    text = VIEWS.terminal(ask(catalog, "llama 3.3 70b fp8 32k 16 users on g6e.12xlarge").plan)
    assert "too little KV for the load" in text and "the rest wait in the queue" in text
    text = VIEWS.terminal(ask(catalog, "llama 3.3 70b fp8 12k on p5.4xlarge").plan)
    assert "does not start" in text


def test_not_ranked_instances_are_summarised_once(catalog: Catalog) -> None:
    text = VIEWS.terminal(ask(catalog, "llama 3.1 8b").plan)
    assert text.count("Not ranked") == 1 and "inf2.xlarge" not in text


def test_a_pinned_gpu_set_is_not_labelled_twice(catalog: Catalog) -> None:
    text = VIEWS.terminal(ask(catalog, "llama 3.3 70b bf16 on 1x a100 80gb").plan)
    assert "1 × A100 80GB, 1 × A100 80GB" not in text


def test_bad_input_with_json_or_blocks_is_machine_readable(capsys) -> None:  # noqa: ANN001
    import json

    from bot.cli import main

    assert main(["plan", "--json", "--model", "llama-3.1-8b", "--gpu", "h1000"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "unknown_gpu" and "h100-sxm" in error["suggestions"]
    assert main(["plan", "--blocks", "--model", "nonsense-model-xyz"]) == 2
    message = json.loads(capsys.readouterr().out)
    assert message["blocks"][0]["type"] == "section" and "nonsense-model-xyz" in message["text"]


def test_version_is_printed(capsys) -> None:  # noqa: ANN001
    from bot.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("headroom 0.")


def test_missed_targets_are_not_called_nothing_serves(catalog: Catalog) -> None:
    turn = ask(catalog, "mistral small 3.1 fp8 64k 32 users under $15/h")
    assert turn.plan.top is None and any(c.feasible for c in turn.plan.candidates)
    (warning,) = [w for w in turn.plan.warnings if w.code == "nothing_meets_targets"]
    assert [m.code for m in warning.misses] == ["over_budget"]
    text = VIEWS.terminal(turn.plan)
    assert "Nothing I evaluated serves this" not in text and "over the $15.00/h budget" in text


# --- found by a review as a new user ---------------------------------------------------------------


def test_a_pasted_command_is_judged_as_written_and_the_better_layout_offered(catalog: Catalog) -> None:
    turn = ask(catalog, "will this OOM on g6e.12xlarge? vllm serve RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic "
                        "--max-model-len 8192")  # fmt: skip
    (only,) = turn.plan.candidates
    assert (only.tp, only.replicas, only.verdict) == (1, 1, "does_not_load")  # no --tensor-parallel-size: TP 1
    layout = next(f for f in turn.plan.fixes if f.lever == "layout")
    assert layout.enough and layout.value == 4 and layout.instance == "g6e.12xlarge"


@pytest.mark.parametrize(
    "command",
    [
        "vllm serve meta-llama/Llama-3.1-8B-Instruct --async-scheduling --tensor-parallel-size 2 --max-model-len 16384",
        "vllm serve meta-llama/Llama-3.1-8B-Instruct --tensor_parallel_size=2 -O3 --max-model-len 16384",
        "vllm serve meta-llama/Llama-3.1-8B-Instruct \u2014tensor-parallel-size 2 \u2014max-model-len 16384",
    ],
)
def test_odd_but_valid_command_flags_are_read(catalog: Catalog, command: str) -> None:
    turn = ask(catalog, command, instance="g6e.12xlarge")
    (only,) = turn.plan.candidates
    assert (only.tp, turn.request.context_tokens) == (2, 16384)


def test_words_after_a_command_are_read_with_the_question(catalog: Catalog) -> None:
    turn = ask(catalog, "vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192 on g6e.xlarge with 20 users")
    assert turn.request.instance == "g6e.xlarge" and turn.request.concurrency == 20


def test_a_context_beyond_the_model_gets_a_command_vllm_accepts(catalog: Catalog) -> None:
    top = ask(catalog, "llama 3.1 8b 200k context").plan.top
    assert top.vllm_command.startswith("VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vllm serve ")


def test_prices_name_the_region_they_are_for(catalog: Catalog) -> None:
    # issue 12: a region with data is priced there (was: us-east-1 prices with a warning)
    text = VIEWS.terminal(ask(catalog, "llama 3.1 8b in eu-west-1").plan)
    assert "eu-west-1 list price" in text and "us-east-1 list price" not in text
    assert "us-east-1 list price" in VIEWS.terminal(ask(catalog, "llama 3.1 8b").plan)


def test_a_fix_for_a_budget_is_an_instance_within_it(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.3 70b under $5/hour 8k")
    enough = [f for f in turn.plan.fixes if f.enough]
    assert enough and all(catalog.instances[f.instance].price_usd_per_hour <= 5 for f in enough)


def test_decimal_users_are_not_read_as_whole_ones(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.1 8b 0.5 users")  # refused: neither 5 users nor 1 with '0.5' left unread
    assert turn.kind == "error" and turn.error is not None and turn.error.code == "fractional_load"


def test_two_instances_joined_by_and_are_compared(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.1 8b on g6e.12xlarge and p5.48xlarge")
    assert {c.instance for c in turn.plan.candidates} == {"g6e.12xlarge", "p5.48xlarge"}


def test_a_key_in_the_question_is_never_said_back(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.1 8b api key sk-SECRET999abcdef hf_abcdefghijklmnop")
    assert not any("SECRET" in w or "hf_" in w for w in turn.unread)
    assert "SECRET" not in VIEWS.terminal(turn.plan, unread=turn.unread)


def test_exclude_after_only_takes_the_family_out(catalog: Catalog) -> None:
    first = ask(catalog, "llama 3.1 8b only g6e")
    then = respond("exclude g6e", first.memory, catalog)
    assert then.kind == "answer" and then.request.families == () and "g6e" in then.request.exclude_families


def test_a_flag_that_contradicts_the_pasted_command_is_refused_not_applied(catalog: Catalog) -> None:
    command = "vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192"
    turn = ask(catalog, command, context_tokens=32768)
    assert turn.kind == "error" and turn.error is not None and turn.error.code == "conflicting_values"
    agreeing = ask(catalog, command, context_tokens=8192)  # the same value twice is no conflict
    assert agreeing.kind == "answer" and agreeing.request.context_tokens == 8192


# --- block-quantized FP8 checkpoints: every TP shard must be whole blocks (vLLM fp8_utils.validate_fp8_block_shape)


def test_a_block_fp8_checkpoint_is_never_planned_at_a_tp_that_splits_its_blocks(catalog: Catalog) -> None:
    turn = ask(catalog, "qwen3 30b a3b fp8 on g6e.12xlarge")  # experts 768 wide: TP 4 gives 192-wide shards
    (only,) = turn.plan.candidates
    assert only.tp in (1, 2) and "--tensor-parallel-size 4" not in (only.vllm_command or "")
    (limit,) = [n for n in turn.plan.warnings if n.code == "fp8_block_tp"]
    assert (limit.excluded, limit.allowed, limit.width) == ([4, 8], [1, 2], 768)
    assert "whole blocks" in VIEWS.terminal(turn.plan)


def test_a_pinned_tp_that_splits_fp8_blocks_is_refused_with_the_tp_that_works(catalog: Catalog) -> None:
    for text in ("qwen3 30b a3b fp8 on g6e.12xlarge tp 4",
                 "on g6e.12xlarge: vllm serve Qwen/Qwen3-30B-A3B-FP8 --tensor-parallel-size 4"):  # fmt: skip
        turn = ask(catalog, text)
        assert turn.kind == "error" and turn.error is not None and turn.error.code == "tp_splits_fp8_block"
        assert turn.error.params["working"] == [1, 2] and turn.error.params["shard"] == 192
        assert "192-wide shards" in VIEWS.error(turn.error)


def test_the_block_rule_follows_the_checkpoint_not_the_model(catalog: Catalog) -> None:
    bf16 = ask(catalog, "qwen3 30b a3b bf16 on g6e.12xlarge tp 4")  # no FP8 blocks: TP 4 loads
    assert bf16.kind == "answer" and bf16.plan.candidates[0].tp == 4
    assert not [n for n in bf16.plan.warnings if n.code == "fp8_block_tp"]
    big = ask(catalog, "qwen3 235b a22b fp8 on p5.48xlarge tp 4")  # 1,536 / 4 = 384 = 3 blocks
    assert big.kind == "answer" and big.plan.candidates[0].tp == 4
    native = ask(catalog, "deepseek v3 on p5en.48xlarge tp 8")  # 2,048 / 8 = 256 = 2 blocks
    assert native.kind == "answer" and native.plan.candidates[0].tp == 8


def test_a_huge_pasted_command_is_refused_quickly_not_tokenised(catalog: Catalog) -> None:
    """shlex is quadratic in a token's length: a 1 MB one-word command once took 22 s to read."""
    from engine.serve_command import MAX_COMMAND_CHARS

    turn = respond("vllm serve x --api-key " + "x" * 999_989, None, catalog)
    assert turn.kind == "error" and turn.error is not None and turn.error.code == "command_too_long"
    assert turn.error.params["limit"] == MAX_COMMAND_CHARS and "x" * 50 not in VIEWS.error(turn.error)

"""A pasted start-up diagnosed: the budget next to what vLLM printed, fixes that were re-planned, nothing leaked."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli import main
from engine.catalog.loader import Catalog
from engine.paste_reader import read_paste
from engine.ranking import plan
from engine.request import Request
from engine.service import diagnosis, respond
from tests.support import CATALOG, VIEWS

#: a 70B FP8 start on one H100 that dies for KV room (figures as vLLM 0.21 would print them, from the refit
#: constants of benchmarks/fit.py: a constructed log, not a measured one)
KV_SHORT = """$ vllm serve meta-llama/Llama-3.3-70B-Instruct --quantization fp8 --max-model-len 9216
INFO 11-20 09:59:50 [api_server.py:1000] vLLM API server version 0.21.0
INFO 11-20 10:00:00 [gpu_model_runner.py:2000] Model loading took 67.72 GiB and 41.2 seconds
INFO 11-20 10:00:20 [gpu_worker.py:300] Available KV cache memory: 1.28 GiB
ERROR 11-20 10:00:20 [core.py:700] ValueError: To serve at least one request with the models's max seq len (9216), \
(2.81 GiB KV cache is needed, which is larger than the available KV cache memory (1.28 GiB). Based on the available \
memory, the estimated maximum model length is 4192. Try increasing `gpu_memory_utilization` or decreasing \
`max_model_len` when initializing the engine.
"""


def test_the_budget_is_compared_term_by_term_with_what_vllm_printed(catalog: Catalog) -> None:
    turn = diagnosis(read_paste(KV_SHORT), catalog, {"instance": "p5.4xlarge"})
    d = turn.diagnosis
    assert d.reading.kind == "kv_too_small_for_max_len" and d.request.context_tokens == 9216
    terms = {n.term: n for n in d.compared}
    assert abs(terms["weights"].off) < 0.01 and not terms["weights"].disagree
    assert abs(terms["kv_pool"].predicted - 1.28) < 0.05
    assert d.candidate.verdict == "no_kv_room"


def test_the_first_fix_that_claims_to_fit_fits_when_applied_and_the_others_say_they_fall_short(catalog: Catalog) -> None:
    d = diagnosis(read_paste(KV_SHORT), catalog, {"instance": "p5.4xlarge"}).diagnosis
    fixes = d.plan.fixes
    assert fixes and any(not f.enough for f in fixes) and any(f.enough for f in fixes)
    for f in fixes:
        if not f.enough:
            assert "still" in VIEWS.say(f)
    first = next(f for f in fixes if f.enough)
    change = {"kv_fp8": {"kv_dtype": "fp8"}, "weights": {"weights": first.value}, "context": {"context_tokens": first.value},
              "utilization": {"gpu_memory_utilization": first.value}}[first.lever]  # fmt: skip
    applied = plan(d.request.replace(**change), catalog).candidates[0]
    assert applied.feasible and applied.instance == "p5.4xlarge"


def test_a_paste_without_its_gpu_asks_for_it_in_one_line(catalog: Catalog) -> None:
    text = KV_SHORT.replace("$ vllm serve meta-llama/Llama-3.3-70B-Instruct --quantization fp8 --max-model-len 9216\n", "")
    turn = respond(text, None, catalog)
    assert turn.kind == "diagnosis" and set(turn.diagnosis.missing) == {"model", "gpu"}
    assert "which GPU and how many" in VIEWS.diagnosis(turn.diagnosis)


def test_diagnose_json_has_the_documented_fields(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    paste = tmp_path / "log.txt"
    paste.write_text(KV_SHORT + "\nexport HF_TOKEN=hf_abcdefghijklmnopqrstuvwx\n")
    assert main(["diagnose", str(paste), "--instance", "p5.4xlarge", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["kind"] == "kv_too_small_for_max_len" and data["read"]["numbers"]["kv_needed_gib"] == 2.81
    assert data["predicted"]["instance"] == "p5.4xlarge"
    assert {"change", "vllm_command", "suffices"} <= set(data["fixes"][0])
    assert any(f["suffices"] and f["vllm_command"].startswith("vllm serve ") for f in data["fixes"])
    assert "hf_abcdefghijklmnopqrstuvwx" not in out


def test_plan_reads_a_paste_as_a_diagnosis_and_diagnose_exits_2_on_nothing_recognisable(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["plan", KV_SHORT]) == 0
    assert "What happened: vLLM refused to start" in capsys.readouterr().out
    noise = tmp_path / "noise.txt"
    noise.write_text("Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'frobnicate'\n")
    assert main(["diagnose", str(noise)]) == 2
    assert "I don't recognise what failed" in capsys.readouterr().out


def test_a_follow_up_naming_the_gpu_re_diagnoses_the_paste(catalog: Catalog) -> None:
    text = KV_SHORT.replace("$ vllm serve meta-llama/Llama-3.3-70B-Instruct --quantization fp8 --max-model-len 9216\n", "")
    first = respond(text, None, catalog)
    assert set(first.diagnosis.missing) == {"model", "gpu"}
    second = respond("it's llama 3.3 70b fp8 on a p5.4xlarge", first.memory, catalog)
    assert second.kind == "diagnosis" and not second.diagnosis.missing
    assert second.diagnosis.candidate.instance == "p5.4xlarge" and second.diagnosis.compared
    third = respond("what about 2x L40S?", second.memory, catalog)
    assert third.kind == "diagnosis" and third.diagnosis.request.gpus == 2
    assert third.diagnosis.reading == first.diagnosis.reading  # the same paste, on other GPUs


def test_the_thread_memory_keeps_the_paste_as_json(catalog: Catalog) -> None:
    from bot.state import memory_from_json, memory_to_json

    memory = respond(KV_SHORT + "\nHF_TOKEN=hf_abcdefghijklmnopqrstuvwx", None, catalog).memory
    raw = memory_to_json(memory)
    assert "hf_abcdefghijklmnopqrstuvwx" not in raw
    assert memory_from_json(raw) == memory


#: real wordings (tests/pastes/corpus.json), on settings whose outcome the engine knows
OOM_LOADING = """INFO 03-02 09:00:00 [gpu_model_runner.py:1600] Starting to load model meta-llama/Llama-3.1-8B-Instruct...
ERROR 03-02 09:00:30 [core.py:500] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 224.00 MiB. GPU 0 \
has a total capacity of 14.74 GiB of which 101.06 MiB is free. Including non-PyTorch memory, this process has 14.64 GiB \
memory in use.
"""
NO_BLOCKS = """INFO 03-02 09:00:00 [gpu_model_runner.py:2000] Model loading took 67.72 GiB and 41.2 seconds
INFO 03-02 09:00:20 [gpu_worker.py:300] Available KV cache memory: -2.14 GiB
ERROR 03-02 09:00:20 [core.py:700] ValueError: No available memory for the cache blocks. Try increasing \
`gpu_memory_utilization` when initializing the engine.
"""


def _first_sufficient_fix_fits(catalog: Catalog, paste: str, overrides: dict) -> None:
    d = diagnosis(read_paste(paste), catalog, overrides).diagnosis
    assert d.candidate is not None and not d.candidate.feasible  # the engine agrees it fails
    first = next(f for f in d.plan.fixes if f.enough)
    change = {"kv_fp8": {"kv_dtype": "fp8"}, "weights": {"weights": first.value}, "context": {"context_tokens": first.value},
              "utilization": {"gpu_memory_utilization": first.value}}[first.lever]  # fmt: skip
    applied = plan(d.request.replace(**change), catalog).candidates[0]
    assert applied.feasible, (first.lever, first.value)
    for f in d.plan.fixes:
        assert f.enough == ("still" not in VIEWS.say(f)), VIEWS.say(f)


def test_cuda_oom_while_loading_gets_a_fix_that_fits(catalog: Catalog) -> None:
    assert read_paste(OOM_LOADING).kind == "cuda_oom"
    overrides = {"model": "llama-3.1-8b", "instance": "g4dn.xlarge", "context_tokens": 4096}
    _first_sufficient_fix_fits(catalog, OOM_LOADING, overrides)


def test_no_cache_blocks_gets_a_fix_that_fits(catalog: Catalog) -> None:
    assert read_paste(NO_BLOCKS).kind == "no_cache_blocks"
    overrides = {"model": "llama-3.3-70b", "weights": "fp8", "instance": "p5.4xlarge", "gpu_memory_utilization": 0.88}
    _first_sufficient_fix_fits(catalog, NO_BLOCKS, overrides)


SECRETS = ("hf_PLANTEDsecret0123456789", "AKIAPLANTED0123456789", "sk-PLANTEDkey0123456789", "https://bob:pw123@host")
FRAGMENTS = (KV_SHORT, OOM_LOADING, NO_BLOCKS, "Traceback (most recent call last):\n", "vllm serve x --api-key ")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS + SECRETS + ("noise ",)), max_size=12), st.integers(0, 1_000_000))
def test_any_paste_is_diagnosed_quickly_and_never_echoes_a_secret(parts: list[str], padding: int) -> None:
    text = "".join(parts) + ("x" * padding if padding > 900_000 else "")
    started = time.perf_counter()
    turn = respond(text, None, CATALOG, {"instance": "p5.4xlarge", "model": "llama-3.3-70b"})
    shown = VIEWS.diagnosis(turn.diagnosis) if turn.diagnosis else repr(turn)
    shown += json.dumps(VIEWS.diagnosis_json(turn.diagnosis), default=str) if turn.diagnosis else ""
    assert time.perf_counter() - started < 0.5  # reading < 200 ms; planning and words on top
    for secret in ("PLANTEDsecret", "AKIAPLANTED", "PLANTEDkey", "pw123"):
        assert secret not in shown


FP8_ON_V100 = """INFO 05-01 10:00:00 [config.py:500] Using fp8 data type to store kv cache.
ERROR 05-01 10:00:02 [core.py:300] ValueError: The quantization method fp8 is not supported for the current GPU. \
Minimum capability: 75. Current capability: 70.
"""


def test_not_supported_on_this_gpu_offers_a_replanned_gpu_that_runs_it(catalog: Catalog) -> None:
    reading = read_paste(FP8_ON_V100)
    assert reading.kind == "unsupported_on_gpu"
    d = diagnosis(reading, catalog, {"model": "llama-3.1-8b", "weights": "fp8"}).diagnosis
    assert d.elsewhere is not None and d.elsewhere.feasible and d.elsewhere.vllm_command
    again = plan(Request(model="llama-3.1-8b", weights="fp8", instance=d.elsewhere.instance), catalog).candidates[0]
    assert again.feasible and again.kv_cache_tokens == d.elsewhere.kv_cache_tokens
    assert f"Where it runs, re-planned: {d.elsewhere.instance}" in VIEWS.diagnosis(d)
    assert VIEWS.diagnosis_json(d)["fixes"][0]["suffices"] is True


NCCL = """INFO 05-01 10:00:00 [custom_all_reduce.py:130] Custom allreduce is disabled because your platform lacks GPU P2P capability.
ERROR 05-01 10:00:05 [core.py:300] RuntimeError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details)
"""


def test_an_nccl_failure_offers_replanned_nvlink_instances(catalog: Catalog) -> None:
    reading = read_paste(NCCL)
    assert reading.kind == "nccl_or_p2p"
    d = diagnosis(reading, catalog, {"model": "llama-3.3-70b", "weights": "bf16"}).diagnosis  # 131 GiB: several GPUs
    e = d.elsewhere
    assert e is not None and e.feasible and e.interconnect in {"nvlink", "none"}
    assert catalog.instances[e.instance_type].interconnect == "nvlink"
    assert "On NVLink GPUs, re-planned:" in VIEWS.diagnosis(d)
    one = diagnosis(reading, catalog, {"model": "llama-3.3-70b", "weights": "fp8"}).diagnosis  # one H100 holds it
    assert one.elsewhere is not None and one.elsewhere.gpu_count == 1
    assert "On one GPU (no NCCL between GPUs), re-planned:" in VIEWS.diagnosis(one)


def test_the_words_around_a_log_name_the_hardware_when_the_log_does_not(catalog: Catalog) -> None:
    text = "Hardware: I am running on a `g5.8xlarge` instance on AWS.\n" + KV_SHORT.split("\n", 1)[1]
    text = "Model: meta-llama/Llama-3.3-70B-Instruct fp8\n" + text
    d = respond(text, None, catalog).diagnosis
    assert not d.missing and d.request.instance == "g5.8xlarge"
    assert d.candidate.instance == "g5.8xlarge"


#: vLLM's fused-MoE block check, as in vllm-project/vllm issue 17569 (Qwen3-235B-A22B-FP8 at TP 8)
BLOCK_SPLIT = """$ vllm serve Qwen/Qwen3-30B-A3B-FP8 --tensor-parallel-size 4
(VllmWorker rank=1 pid=236517) ERROR 05-03 08:17:40 [multiproc_executor.py:990] ValueError: The output_size of gate's \
and up's weight = 192 is not divisible by weight quantization block_n = 128.
"""


def test_a_tp_that_split_fp8_blocks_is_re_planned_on_the_same_gpus(catalog: Catalog) -> None:
    reading = read_paste(BLOCK_SPLIT)
    assert reading.kind == "fp8_block_split" and reading.command and reading.command["tp"] == 4
    d = diagnosis(reading, catalog, {"instance": "g6e.12xlarge"}).diagnosis
    e = d.elsewhere
    assert e is not None and e.feasible and e.instance == "g6e.12xlarge" and e.tp in (1, 2)
    assert "--tensor-parallel-size 4" not in (e.vllm_command or "")
    again = plan(Request(model="Qwen/Qwen3-30B-A3B-FP8", instance="g6e.12xlarge", tp=e.tp), catalog).candidates[0]
    assert again.feasible and again.kv_cache_tokens == e.kv_cache_tokens  # the offered layout, re-planned
    text = VIEWS.diagnosis(d)
    assert "block_n = 128" in text and "A layout that loads, re-planned: g6e.12xlarge" in text


def test_a_log_naming_an_instance_and_its_gpus_is_diagnosed_not_crashed(catalog: Catalog) -> None:
    text = "GPU: 4x L40S (g6e.12xlarge)\n" + KV_SHORT  # hints name both: a request takes the instance
    d = respond(text, None, catalog).diagnosis
    assert d is not None and d.request is not None and d.request.instance == "g6e.12xlarge" and d.request.gpu is None


#: lines of public_startup_logs.csv pcie-rtxpro6000-x4-qwen3-235b-fp8-tp4-v0271 (vLLM 0.27.1, 4 x RTX PRO 6000)
SUMMARY_0271 = """$ vllm serve Qwen/Qwen3-235B-A22B-Instruct-2507-FP8 --tensor-parallel-size 4 --max-model-len 32768 \
--max-num-seqs 32 --gpu-memory-utilization 0.90
INFO 11-20 10:00:00 [api_server.py:1000] vLLM API server version 0.27.1
INFO 11-20 10:00:01 [gpu_model_runner.py:2000] Model loading took 55.19 GiB and 80.1 seconds
INFO 11-20 10:00:40 [gpu_worker.py:400] Free memory on device (94.05/95.01 GiB) on startup. Desired GPU memory \
utilization is (0.9, 85.51 GiB). Actual usage is 56.89 GiB for consumed memory (weights + non-torch), 0.76 GiB \
for peak activation, and 0.32 GiB for CUDAGraph memory.
INFO 11-20 10:00:41 [gpu_worker.py:420] Available KV cache memory: 27.85 GiB
"""


def test_a_0_27_summary_is_compared_as_vllm_0_27_defines_its_terms(catalog: Catalog) -> None:
    """0.27+ prints 'consumed' (weights + non-torch + the kept MoE workspace) and a 'peak activation' holding the
    CUDA-graph estimate but not the kept workspace (Worker.determine_available_memory @v0.27.1): compared so,
    the MoE workspace is not called a disagreement twice."""
    hardware = {"gpu": "rtx-pro-6000-server", "gpus": 4, "model": "Qwen/Qwen3-235B-A22B", "weights": "fp8"}  # 2507: same shape
    d = diagnosis(read_paste(SUMMARY_0271), catalog, hardware).diagnosis
    top, terms = d.candidate, {n.term: n for n in d.compared}
    assert top.moe_workspace_gib_per_gpu == pytest.approx(1.0, abs=0.05)  # TritonExperts.workspace_shapes at M=2048
    assert terms["consumed"].printed == 56.89 and abs(terms["consumed"].off) < 0.02 and not terms["consumed"].disagree
    expected = top.activation_gib_per_gpu - top.moe_workspace_gib_per_gpu + top.cudagraph_gib_per_gpu
    assert terms["activation"].predicted == pytest.approx(expected)
    assert abs(terms["activation"].predicted - 0.76) < 0.3 < abs(top.activation_gib_per_gpu - 0.76)
    assert "consumed (weights + non-torch, as vLLM 0.27+ prints it)" in VIEWS.diagnosis(d)


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        ("Model loading took 99999999.00 GiB and 41.2 seconds\nAvailable KV cache memory: 12.28 GiB", "weights 99,999,999.00 GiB"),
        ("Model loading took 60.00 GiB and 41.2 seconds\nAvailable KV cache memory: 40.00 GiB", "add up to 100.00 GiB"),
    ],
)
def test_figures_no_gpu_could_print_are_refused_not_called_healthy(lines: str, said: str, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    text = "INFO 11-20 09:59:50 [api_server.py:1000] vLLM API server version 0.21.0\n" + "\n".join(
        f"INFO 11-20 10:00:0{i} [gpu_worker.py:300] {line}" for i, line in enumerate(lines.split("\n"))
    )
    d = diagnosis(read_paste(text), CATALOG, {"gpu": "h100", "model": "llama-3.1-8b"}).diagnosis
    assert d.assumed[0].code == "paste_figures_impossible" and not d.compared
    shown = VIEWS.diagnosis(d)
    assert shown.startswith("What happened: I can't diagnose this log") and said in shown and "healthy" not in shown
    log = tmp_path / "edited.log"
    log.write_text(text)
    assert main(["diagnose", str(log), "--gpu", "h100", "--model", "llama-3.1-8b"]) == 2
    capsys.readouterr()


def test_a_real_healthy_start_up_is_not_called_impossible() -> None:
    d = diagnosis(read_paste(SUMMARY_0271), CATALOG, {"gpu": "rtx-pro-6000-server", "gpus": 4,
                                                      "model": "Qwen/Qwen3-235B-A22B", "weights": "fp8"}).diagnosis  # fmt: skip
    assert all(a.code != "paste_figures_impossible" for a in d.assumed) and d.compared


def test_no_real_paste_is_called_impossible() -> None:
    """tests/pastes/corpus.json: 58 real pastes; none may be refused as edited."""
    corpus = json.loads((Path(__file__).parents[1] / "pastes" / "corpus.json").read_text())
    for entry in corpus:
        d = diagnosis(read_paste(entry["text"]), CATALOG).diagnosis
        assert d is not None and all(a.code != "paste_figures_impossible" for a in d.assumed), entry["id"]

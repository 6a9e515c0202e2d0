"""The fitted constants are reproducible from declared training rows and hold on rows they never saw."""

from __future__ import annotations

import statistics

from benchmarks.fit import fit_constants, graph_replays, report
from engine.catalog.loader import Catalog
from tests.calibration.fit_rows import full_replays, memory_split_rows, non_torch_split, public_rows, split
from tests.calibration.replay import replay_memory


def test_vllm_yaml_holds_exactly_the_fit_of_the_training_rows(catalog: Catalog) -> None:
    training, _ = memory_split_rows()
    assert fit_constants(catalog, training) == catalog.vllm.fitted._asdict()


def test_training_and_validation_rows_are_disjoint_and_declared(catalog: Catalog) -> None:
    training, validation = memory_split_rows()
    assert len(validation) == len(split()["vllm_memory"]["validation"]) >= 10
    assert len(training) >= 25 and not {id(r) for r in training} & {id(r) for r in validation}
    parts = non_torch_split(catalog)
    rows = public_rows()
    assert all(rows[r.id]["split"] == "train" for r in parts["training"])
    assert all(rows[r.id]["split"] == "validation" for r in parts["validation"])


def test_kv_capacity_fits_training_rows_and_validation_rows_it_never_saw(catalog: Catalog) -> None:
    training, validation = memory_split_rows()
    for rows in (training, validation):
        replays = [replay_memory(catalog, row) for row in rows]
        kv = [abs(r.kv_error) for r in replays]
        # the fit reaches worst 0.57 % (training) and 0.18 % (validation): a 1 % slip fails
        assert statistics.median(kv) <= 0.005 and max(kv) <= 0.01
        assert max(abs(r.weights_error) for r in replays) <= 0.01


def test_cuda_graph_estimate_fits_training_rows_and_validation_rows_it_never_saw(catalog: Catalog) -> None:
    training, validation = memory_split_rows()
    # the per-graph line reaches |error| median 0.12 / worst 0.66 GiB (training, 26 rows) and 0.04 / 0.88 GiB
    # (validation, 13 rows); the worst are logs that disagree with their siblings (Granite 3.1 2B logs 1.60,
    # Llama 3.1 8B at TP2 1.69 where TP1 and TP4 log 0.84 and 0.57)
    for rows, median, worst, count in ((training, 0.13, 0.7, 26), (validation, 0.05, 0.9, 13)):
        errors = [abs(predicted - logged) for _, _, logged, predicted in graph_replays(catalog, rows)]
        assert len(errors) == count and statistics.median(errors) <= median and max(errors) <= worst


def test_pcie_tensor_parallel_non_torch_is_not_the_nvlink_figure(catalog: Catalog) -> None:
    parts = non_torch_split(catalog)
    pcie = [r for part in ("training", "validation") for r in parts[part] if r.interconnect == "pcie"]
    assert len(pcie) >= 8 and sum(r in parts["validation"] for r in pcie) >= 4
    # the old NVLink-only term (2.0 + 0.035 x TP) was 5-62 % of these pools; now the worst is 5.2 %
    assert max(abs(r.kv_error) for r in pcie) <= 0.06
    assert all(r.predicted < 0.5 for r in pcie)


def test_non_torch_term_holds_on_validation_start_ups(catalog: Catalog) -> None:
    parts = non_torch_split(catalog)
    # the fit reaches worst 5.2 % (training) and 4.9 % (validation); medians 0.8 % and 0.5 %
    for part in ("training", "validation"):
        errors = [abs(r.kv_error) for r in parts[part]]
        assert statistics.median(errors) <= 0.015 and max(errors) <= 0.06


def test_public_start_ups_replayed_in_full(catalog: Catalog) -> None:
    replays = {r.id: r for r in full_replays(catalog)}
    # PCIe TP4 on RTX PRO 6000 (0.27.1, --max-num-seqs 32). Every term but non-torch, checked against the log by
    # taking its printed 'consumed memory (weights + non-torch)' in place of ours: +0.9 %. In full the pool is
    # +3.0 % (TP4) and +2.6 % (TP4 + EP): headroom's PCIe non-torch (0.20 GiB) is 0.57 GiB under what this
    # log consumed beyond the weights and the kept MoE workspace (docs/vllm-memory.md); the earlier 0.9 % came
    # from a graph estimate 1.5 GiB too high cancelling it.
    tp4, ep = replays["pcie-rtxpro6000-x4-qwen3-235b-fp8-tp4-v0271"], replays["pcie-rtxpro6000-x4-qwen3-235b-fp8-tp4ep-v0271"]
    assert tp4.kv_error_given_consumed is not None and abs(tp4.kv_error_given_consumed) <= 0.015
    assert abs(tp4.kv_error) <= 0.035 and abs(ep.kv_error) <= 0.035  # in full: +3.0 % and +2.6 % today
    assert 0.4 <= tp4.printed_consumed - tp4.predicted_consumed <= 0.8  # type: ignore[operator]
    assert ep.predicted_gib == tp4.predicted_gib and abs(ep.measured_gib / tp4.measured_gib - 1) <= 0.005
    for name in ("single-h100-qwen3-14b-v017", "single-h100-qwen3-14b-v018"):
        assert abs(replays[name].kv_error) <= 0.005
    # worst: the PP4 summary-table row (+5.8 %, validation); the WSL RTX 4090 (training) is -3.1 % since model
    # runner V2 reserves no graph estimate (it was -5.8 % with V1's)
    assert max(abs(r.kv_error) for r in replays.values() if r.split == "validation") <= 0.06
    assert abs(replays["single-rtx4090-wsl-qwen25-0p5b-v0271"].kv_error) <= 0.035
    assert max(abs(r.kv_error) for r in replays.values()) <= 0.06


def test_report_prints_training_and_validation_per_row(catalog: Catalog) -> None:
    text = report(catalog)
    assert "training rows" in text and "validation rows" in text and "logged CUDA-graph estimate" in text
    assert "pcie-rtx4090-x2-r1-distill-qwen14b-v07" in text and "x4-rtx2080ti22g-qwen3-30b-a3b-32k-v085" in text

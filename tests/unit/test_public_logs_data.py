"""The public start-up log set (tests/calibration/public_startup_logs.csv) is well formed and self-consistent."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import pytest

CSV_PATH = Path(__file__).parents[1] / "calibration" / "public_startup_logs.csv"
NUMERIC = [
    "gpu_count",
    "tp",
    "pp",
    "gpu_memory_utilization",
    "max_model_len",
    "max_num_seqs",
    "max_num_batched_tokens",
    "total_gpu_memory_gib",
    "weights_gib",
    "non_torch_gib",
    "activation_peak_gib",
    "cudagraph_gib",
    "kv_cache_gib",
    "kv_cache_tokens",
    "max_concurrency",
    "max_concurrency_tokens",
]
# Each printed figure is rounded to 0.01 GiB, so a sum of six of them can be off by a few hundredths.
ROUNDING_GIB = 0.06


def _rows() -> list[dict[str, str]]:
    with CSV_PATH.open(newline="") as f:
        return list(csv.DictReader(f))


def _num(row: dict[str, str], col: str) -> float | None:
    return float(row[col]) if row[col].strip() else None


def _version(row: dict[str, str]) -> tuple[int, int] | None:
    m = re.match(r"v?(\d+)\.(\d+)", row["vllm_version"])
    return (int(m.group(1)), int(m.group(2))) if m else None


def test_csv_parses_with_the_documented_columns() -> None:
    with CSV_PATH.open(newline="") as f:
        header = next(csv.reader(f))
    assert header[0] == "id"
    assert {"source_url", "vllm_version", "vlm", "tier", "split", *NUMERIC} <= set(header)
    rows = _rows()
    assert len(rows) >= 67
    assert all(len(r) == len(header) and None not in r for r in rows)


def test_every_row_has_a_source_a_tier_and_a_split() -> None:
    for r in _rows():
        assert r["source_url"].strip(), r["id"]
        assert r["source_url"].startswith("https://") or r["source_url"].startswith(
            "unidentified public GitHub file (search-index file id "
        ), r["id"]
        assert r["vlm"] in {"yes", "no"}, r["id"]
        assert r["tier"] in {"strong", "medium", "weak", "reference"}, r["id"]
        assert r["split"] in {"train", "validation", "reference"}, r["id"]
        assert (r["split"] == "reference") == (r["tier"] == "reference"), r["id"]


def test_ids_are_unique() -> None:
    ids = [r["id"] for r in _rows()]
    assert len(ids) == len(set(ids))


def test_numbers_parse_and_are_non_negative() -> None:
    for r in _rows():
        for col in NUMERIC:
            value = _num(r, col)
            assert value is None or value >= 0, (r["id"], col, value)
        util = _num(r, "gpu_memory_utilization")
        assert util is None or 0 < util <= 1, r["id"]


def test_both_splits_hold_the_priority_groups() -> None:
    rows = [r for r in _rows() if r["split"] != "reference"]
    pcie_tp = [r for r in rows if r["interconnect"] == "pcie" and int(r["tp"] or 1) * int(r["pp"] or 1) > 1]
    post_021 = [r for r in rows if (_version(r) or (0, 0)) > (0, 21)]
    moe = [r for r in rows if "moe" in (r["dtype_or_quant"] + r["model"]).lower()]
    vlm = [r for r in rows if r["vlm"] == "yes"]
    for group in (pcie_tp, post_021, moe, vlm):
        assert {r["split"] for r in group} == {"train", "validation"}


def _cluster(row: dict[str, str]) -> str:
    """Rows that must fall on the same side: one source, or a declared correlated series."""
    if re.fullmatch(r"pcie-rtxpro6000-x8-glm51-nvfp4-.*fork", row["id"]):
        return "rtx6kpro GLM-5.1 NVFP4 fork cluster"
    if row["id"].startswith("x4-rtx2080ti22g-"):
        return "4x RTX 2080 Ti 22GB blog series (one author, one rig)"
    return row["source_url"]


def test_split_follows_the_stated_rule() -> None:
    """public_startup_logs.md, "Split": reference rows stay out; other rows go by a hash of their cluster."""
    for r in _rows():
        if r["tier"] == "reference":
            expected = "reference"
        else:
            digest = hashlib.sha256(_cluster(r).encode()).hexdigest()
            expected = "validation" if int(digest[:8], 16) % 3 == 0 else "train"
        assert r["split"] == expected, r["id"]


@pytest.mark.parametrize("row", _rows(), ids=lambda r: r["id"])
def test_printed_figures_fit_inside_the_budget(row: dict[str, str]) -> None:
    """weights + activation + non-torch (+ CUDA graphs where reserved) + KV <= utilization x total.

    vLLM reserves CUDA-graph memory inside the budget only when it profiles the graphs first (default
    from 0.21, and only when the log prints the estimate). Before that, and with the V2 model runner,
    graphs are captured after the KV cache is sized, outside the budget, so the graph term joins the
    sum only for rows of a printed version >= 0.21 whose notes quote the estimate.
    """
    util, total = _num(row, "gpu_memory_utilization"), _num(row, "total_gpu_memory_gib")
    parts = [_num(row, c) for c in ("weights_gib", "activation_peak_gib", "non_torch_gib", "kv_cache_gib")]
    if util is None or total is None or any(p is None for p in parts):
        pytest.skip("not every term is printed")
    used = sum(p for p in parts if p is not None)
    graphs = _num(row, "cudagraph_gib")
    reserved = "Estimated CUDA graph memory" in row["notes"] or "(estimated)" in row["notes"]
    if graphs is not None and reserved and (_version(row) or (0, 0)) >= (0, 21):
        used += graphs
    assert used <= util * total + ROUNDING_GIB

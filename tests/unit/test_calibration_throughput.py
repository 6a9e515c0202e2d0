"""Aggregate throughput at --concurrency max against TensorRT-LLM's published tables."""

from __future__ import annotations

import math
import statistics

from engine.catalog.loader import Catalog
from tests.calibration.replay import replay_throughput, throughput_rows, throughput_table


def test_predicted_throughput_tracks_published_measurements(catalog: Catalog) -> None:
    replays = [replay_throughput(catalog, row) for row in throughput_rows()]
    print("\n" + throughput_table(replays))
    assert len(replays) == 110
    assert statistics.median(abs(r.log_ratio) for r in replays) <= 0.35


def test_faster_memory_gives_faster_decode_on_the_same_model(catalog: Catalog) -> None:
    rows = {(r["gpu"], r["input_len"], r["output_len"]): r for r in throughput_rows() if r["model"] == "Llama 3.1 8B"}
    h200 = replay_throughput(catalog, rows[("H200 141GB HBM3", "128", "2048")])
    h100 = replay_throughput(catalog, rows[("H100 80GB HBM3", "128", "2048")])
    l40s = replay_throughput(catalog, rows[("L40S", "128", "2048")])
    assert h200.predicted > h100.predicted > l40s.predicted > 0
    assert math.isfinite(h100.log_ratio)

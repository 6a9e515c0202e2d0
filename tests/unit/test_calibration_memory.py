"""Replay every vLLM >= 0.17 start-up log in tests/calibration/vllm_memory.csv through the engine."""

from __future__ import annotations

import statistics

from engine.catalog.loader import Catalog
from tests.calibration.replay import memory_rows, memory_table, replay_memory


def test_kv_capacity_and_weights_match_vllm_startup_logs(catalog: Catalog) -> None:
    replays = [replay_memory(catalog, row) for row in memory_rows("0.17.0")]
    print("\n" + memory_table(replays))
    assert len(replays) >= 30
    kv_errors = [abs(r.kv_error) for r in replays]
    assert statistics.median(kv_errors) <= 0.03
    assert max(kv_errors) <= 0.10
    worst_weights = max(replays, key=lambda r: abs(r.weights_error))
    assert abs(worst_weights.weights_error) <= 0.01, worst_weights


def test_max_concurrency_matches_vllm_where_logged(catalog: Catalog) -> None:
    replays = [replay_memory(catalog, row) for row in memory_rows("0.17.0")]
    logged = [r for r in replays if r.measured_concurrency]
    assert len(logged) >= 30
    for r in logged:
        assert abs(r.predicted_concurrency / r.measured_concurrency - 1) <= 0.03, r

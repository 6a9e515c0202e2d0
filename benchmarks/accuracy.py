"""Accuracy against real measurements: vLLM start-up logs and published throughput tables.

    python -m benchmarks.accuracy

Prints predicted vs measured per row (the same replay the tests assert on).
"""

from __future__ import annotations

from engine.catalog.loader import load_catalog
from tests.calibration.replay import (
    memory_rows,
    memory_table,
    replay_memory,
    replay_throughput,
    throughput_rows,
    throughput_table,
)


def main() -> None:
    catalog = load_catalog()
    print("vLLM >= 0.17 start-up memory (tests/calibration/vllm_memory.csv)")
    print(memory_table([replay_memory(catalog, row) for row in memory_rows("0.17.0")]))
    print()
    print("Aggregate throughput at --concurrency max (tests/calibration/throughput.csv, TensorRT-LLM v0.17)")
    print(throughput_table([replay_throughput(catalog, row) for row in throughput_rows()]))


if __name__ == "__main__":
    main()

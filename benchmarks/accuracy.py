"""Accuracy against real measurements: vLLM start-up logs and published throughput tables.

    python -m benchmarks.accuracy

Prints predicted vs measured per row (the same replays the tests assert on): the start-up logs
split into the training rows the fitted constants come from and the validation rows they never
saw (tests/calibration/memory_split.yaml), then the non-torch term on public multi-GPU logs.
"""

from __future__ import annotations

from bot.catalog_files import load_catalog
from tests.calibration.fit_rows import full_replays, full_table, memory_split_rows, non_torch_split, non_torch_table
from tests.calibration.replay import (
    memory_table,
    replay_memory,
    replay_throughput,
    throughput_rows,
    throughput_table,
)


def main() -> None:
    catalog = load_catalog()
    training, validation = memory_split_rows()
    for name, rows in (("training", training), ("validation", validation)):
        print(f"vLLM >= 0.17 start-up memory, {name} rows (tests/calibration/vllm_memory.csv)")
        print(memory_table([replay_memory(catalog, row) for row in rows]))
        print()
    parts = non_torch_split(catalog)
    for name in ("training", "validation", "reference"):
        print(f"Non-torch memory of multi-GPU start-ups, {name} rows (tests/calibration/public_startup_logs.csv)")
        print(non_torch_table(parts[name]))
        print()
    print("Public start-ups replayed in full (models and GPUs in the catalog, vLLM >= 0.17)")
    print(full_table(full_replays(catalog)))
    print()
    print("Aggregate throughput at --concurrency max (tests/calibration/throughput.csv, TensorRT-LLM v0.17)")
    print(throughput_table([replay_throughput(catalog, row) for row in throughput_rows()]))


if __name__ == "__main__":
    main()

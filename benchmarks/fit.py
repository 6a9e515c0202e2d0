"""Rebuild the fitted constants of engine/catalog/data/vllm.yaml from the declared training rows.

    python -m benchmarks.fit            # print the refit constants and the fit per row
    python -m benchmarks.fit --write    # also write them into vllm.yaml `fitted:`

Each constant is read off one printed component of vLLM's start-up log, never off the KV
pool (so a constant cannot absorb another term's error):
- non-torch (single GPU, PP only): median of the printed figure;
- non-torch, TP over NVLink: least-squares line in TP through the printed figures;
- non-torch, TP over PCIe: median of the printed PCIe TP figures (public logs, any version:
  the NCCL buffers it holds do not depend on vLLM's version);
- CUDA-graph estimate: vLLM's profiler extrapolates from its first two captures (first capture +
  (graphs - 1) x second, per mode; engine/vllm_cudagraphs.py counts the graphs from the capture
  sizes). What is fitted is the memory of one graph: a least-squares line in decoder layers per GPU
  through (logged estimate - the largest graph's activations) / graphs counted, per training row;
- activation: the fixed workspace from rows where the forward pass sets the peak, then the
  sampler's bytes per logit from rows where the dummy sampler run does.
Training / validation membership: tests/calibration/memory_split.yaml, declared before fitting.
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

from bot.catalog_files import load_catalog
from engine.catalog.loader import BatchDefaults, Catalog, Fitted
from engine.served import GIB
from engine.vllm_memory import activation_terms, batch_defaults, cudagraph_estimate_gib, graph_profile, visible_gib
from tests.calibration.fit_rows import (
    full_replays,
    full_table,
    graphs_table,
    memory_split_rows,
    non_torch_split,
    non_torch_table,
    public_rows,
)
from tests.calibration.replay import RowSetup, memory_table, replay_memory, row_setup

YAML = Path(__file__).resolve().parents[1] / "engine" / "catalog" / "data" / "vllm.yaml"
DIGITS = {"sampler_bytes_per_logit": 2, "activation_base_gib": 4, "cudagraph_base_gib": 5, "cudagraph_gib_per_layer": 6}


def _line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def fit_constants(catalog: Catalog, training: list[dict[str, str]]) -> dict[str, float]:
    """The `fitted:` block, from training rows of vllm_memory.csv and public_startup_logs.csv."""
    single, pp_only, tp_x, tp_y, graph_x, graph_y = [], [], [], [], [], []
    forward_rows, sampler_rows = [], []
    for row in training:
        setup = row_setup(catalog, row)
        tp, pp = setup.tp, setup.pp
        non_torch = float(row["non_torch_gib"]) if row["non_torch_gib"] else None
        if non_torch is not None:
            if tp == 1:
                (pp_only if pp > 1 else single).append(non_torch)
            else:
                tp_x.append(tp)
                tp_y.append(non_torch)
        batching = row_batching(catalog, setup)
        estimate = logged_graph_estimate(row)
        if estimate is not None:
            first, graphs = graph_profile(setup.served, setup.gpu, batching, tp, setup.behaviour)
            graph_x.append(setup.served.arch.layers / pp)
            graph_y.append((estimate - first) / graphs)
        if row["activation_peak_gib"] and pp == 1:
            terms = activation_terms(setup.served, batching, tp, setup.gpu)
            sampler_floor = terms.hidden_states + terms.logits * (12 + terms.logit_bytes)
            target = forward_rows if terms.forward > sampler_floor else sampler_rows
            target.append((float(row["activation_peak_gib"]), terms))
    # the MoE workspace (terms.workspace) is held through both passes: it comes off before either fit
    base = statistics.median(act - (t.workspace + t.forward) / GIB for act, t in forward_rows)
    per_logit = statistics.median(
        ((act - base) * GIB - t.workspace - t.hidden_states) / t.logits - t.logit_bytes for act, t in sampler_rows
    )
    single_gib = statistics.median(single)
    pcie = [
        r.measured for r in non_torch_split(catalog)["training"]
        if r.interconnect == "pcie" and not r.by_subtraction and r.tp > 1
    ]  # fmt: skip
    tp_base, tp_slope = _line(tp_x, tp_y)
    graph_base, graph_slope = _line(graph_x, graph_y)
    fitted = {
        "activation_base_gib": base,
        "sampler_bytes_per_logit": per_logit,
        "non_torch_single_gib": single_gib,
        "non_torch_pp_only_gib": statistics.median(pp_only),
        "non_torch_tp_base_gib": tp_base,
        "non_torch_tp_per_rank_gib": tp_slope,
        "non_torch_tp_pcie_gib": statistics.median(pcie),
        "cudagraph_base_gib": graph_base,
        "cudagraph_gib_per_layer": graph_slope,
    }
    return {k: round(v, DIGITS.get(k, 3)) for k, v in fitted.items()}


def logged_graph_estimate(row: dict[str, str]) -> float | None:
    """vLLM's 'Estimated CUDA graph memory' as the vllm_memory.csv row's notes quote it (GiB per GPU)."""
    found = re.search(r"CUDA graph estimated ([\d.]+) GiB", row["notes"])
    return float(found[1]) if found else None


def row_batching(catalog: Catalog, setup: RowSetup) -> BatchDefaults:
    """vLLM's batch defaults for a row's GPU and version, as the engine works them out."""
    return batch_defaults(catalog, setup.gpu, visible_gib(setup.gpu), version=setup.behaviour.version)


def graph_replays(catalog: Catalog, rows: list[dict[str, str]]) -> list[tuple[dict[str, str], int, float, float]]:
    """(row, graphs, logged estimate, predicted estimate) for the rows that log vLLM's CUDA-graph estimate."""
    found = []
    for row in rows:
        logged = logged_graph_estimate(row)
        if logged is None:
            continue
        setup = row_setup(catalog, row)
        profile = graph_profile(setup.served, setup.gpu, row_batching(catalog, setup), setup.tp, setup.behaviour)
        predicted = cudagraph_estimate_gib(catalog, profile, setup.served.arch.layers // setup.pp)
        found.append((row, profile.graphs, logged, predicted))
    return found


def graph_table(catalog: Catalog, rows: list[dict[str, str]]) -> str:
    """Logged CUDA-graph estimates against the model's, per row (the rows that log one)."""
    lines = [f"{'model':44} {'w':5} tp pp graphs {'estimate meas/pred':>19} {'err':>6}"]
    replays = graph_replays(catalog, rows)
    for row, graphs, logged, predicted in replays:
        setup = row_setup(catalog, row)
        lines.append(
            f"{row['model'][-44:]:44} {setup.served.fmt.dtype:5} {setup.tp:2} {setup.pp:2} {graphs:6} "
            f"{logged:9.2f}/{predicted:<9.2f} {predicted - logged:+6.2f}"
        )
    errors = [abs(p - m) for _, _, m, p in replays]
    if errors:
        median, worst = statistics.median(errors), max(errors)
        lines.append(f"rows {len(errors)}: |error| median {median:.2f} GiB, worst {worst:.2f} GiB")
    return "\n".join(lines)


def with_fitted(catalog: Catalog, fitted: dict[str, float]) -> Catalog:
    return catalog.replace(vllm=catalog.vllm._replace(fitted=Fitted(**fitted)))


def write_yaml(fitted: dict[str, float]) -> None:
    """Replace the numbers in vllm.yaml's `fitted:` block in place, keeping its comments."""
    text = YAML.read_text(encoding="utf-8")
    for key, value in fitted.items():
        text, count = re.subn(rf"(?m)^(  {key}: )[-\d.]+", rf"\g<1>{value}", text)
        assert count == 1, key
    YAML.write_text(text, encoding="utf-8")


def report(catalog: Catalog) -> str:
    """Refit constants, then the per-row fit on training and validation rows, separately."""
    training, validation = memory_split_rows()
    fitted = fit_constants(catalog, training)
    refit = with_fitted(catalog, fitted)
    current = catalog.vllm.fitted._asdict()
    lines = ["fitted constant                 vllm.yaml     refit"]
    lines += [f"{k:30} {current[k]:>9} {v:>9}" for k, v in fitted.items()]
    for name, rows in (("training", training), ("validation", validation)):
        lines += ["", f"vllm_memory.csv {name} rows (KV capacity, weights)"]
        lines.append(memory_table([replay_memory(refit, row) for row in rows]))
    for name, rows in (("training", training), ("validation", validation)):
        lines += ["", f"vllm_memory.csv {name} rows (logged CUDA-graph estimate, GiB per GPU)"]
        lines.append(graph_table(refit, rows))
    parts = non_torch_split(refit)
    for name in ("training", "validation", "reference"):
        lines += ["", f"public_startup_logs.csv {name} rows (non-torch term only)"]
        lines.append(non_torch_table(parts[name]))
    replays = full_replays(refit)
    lines += ["", "public start-ups replayed in full (feed no constant)", full_table(replays)]
    lines += ["", "their CUDA graphs (validation of the per-graph line at other graph counts)", graphs_table(replays)]
    undeclared = sorted(set(public_rows()) - {r.id for rows in parts.values() for r in rows})
    lines += ["", f"public rows not in this check (single GPU, or no non-torch / KV figure): {len(undeclared)}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="write the refit constants into vllm.yaml")
    args = parser.parse_args()
    catalog = load_catalog()
    print(report(catalog))
    if args.write:
        training, _ = memory_split_rows()
        write_yaml(fit_constants(catalog, training))
        print(f"\nwrote {YAML}")


if __name__ == "__main__":
    main()

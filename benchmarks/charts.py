"""Cost of the pictures (issue 15): the chart model, its Slack blocks, and the PNG.

    python -m benchmarks.charts [--rounds 40]

Plans the latency benchmark's 60 mixed requests once, then times, per answer: the budget chart
model (engine/charts.py, µs), the capacity curve a follow-up adds (µs), the Slack blocks built
and checked against Slack's rules (µs), and the PNG render (matplotlib Agg, ms; target p50 <= 150 ms), as wall time and as this process's CPU
time (on a shared machine the wall time also counts other processes). The first PNG (matplotlib's
import and font cache) is reported on its own.
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks.latency import percentile, requests
from bot.catalog_files import load_catalog
from bot.chart_blocks import ChartBlocks
from bot.chart_png import budget_figure, png
from bot.render import Views
from engine.charts import Charts, budget_chart, capacity_curve
from engine.ranking import plan


def _line(name: str, values: list[float], unit: str, scale: float) -> str:
    p50, p99 = percentile(values, 0.5) * scale, percentile(values, 0.99) * scale
    return f"{name:<28} p50 {p50:9.1f} {unit}   p99 {p99:9.1f} {unit}   n {len(values)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="timed passes over the answers for the model")
    parser.add_argument("--pngs", type=int, default=60, help="PNGs rendered (cycling over the answers)")
    args = parser.parse_args()
    catalog, views = load_catalog(), Views()
    answers = [(plan(r, catalog), r) for r in requests()]
    answers = [(p, r) for p, r in answers if budget_chart(p) is not None]
    blocks = ChartBlocks(views)
    model: list[float] = []
    curve: list[float] = []
    slack: list[float] = []
    for _ in range(args.rounds):
        for p, r in answers:
            t0 = time.perf_counter()
            chart = budget_chart(p)
            t1 = time.perf_counter()
            line = capacity_curve(p, r, catalog)
            t2 = time.perf_counter()
            blocks.parts(Charts(chart, line), ["instance"], [])
            t3 = time.perf_counter()
            model.append(t1 - t0)
            curve.append(t2 - t1)
            slack.append(t3 - t2)
    t0 = time.perf_counter()
    first = budget_chart(answers[0][0])
    assert first is not None
    png(budget_figure(first, views))
    cold = time.perf_counter() - t0
    renders: list[float] = []
    cpu: list[float] = []
    sizes: list[int] = []
    for i in range(args.pngs):
        chart = budget_chart(answers[i % len(answers)][0])
        assert chart is not None
        t0, c0 = time.perf_counter(), time.process_time()
        data = png(budget_figure(chart, views))
        renders.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        sizes.append(len(data))
    print(f"answers: {len(answers)} distinct, {args.rounds} rounds for the model, {args.pngs} PNGs")
    print(_line("budget chart model", model, "µs", 1e6))
    print(_line("capacity curve (follow-up)", curve, "µs", 1e6))
    print(_line("Slack blocks + rule checks", slack, "µs", 1e6))
    print(f"{'first PNG (imports, fonts)':<28} {cold * 1e3:13.1f} ms")
    print(_line("PNG render (800x450), wall", renders, "ms", 1e3) + f"   median size {sorted(sizes)[len(sizes) // 2]:,} B")
    print(_line("PNG render, CPU time", cpu, "ms", 1e3))
    print("load average while measuring: {:.1f} {:.1f} {:.1f} on {} CPUs".format(*os.getloadavg(), os.cpu_count()))


if __name__ == "__main__":
    main()

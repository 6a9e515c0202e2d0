"""Start-up time of the `headroom` CLI: whole processes, wall clock, against a bare interpreter.

    python -m benchmarks.startup [--runs 15]

A CLI answer is dominated by process start (imports, catalog loading), not by planning, so
this times whole subprocesses. The commands run interleaved, in a rotated order each round,
so machine noise hits all of them alike; one warm-up round is not counted. The catalog cache
(bot.catalog_cache) is warmed first, as it is on any machine after the first run.
Prints median, p90, min and each median's ratio to `python -c pass`, then where one `plan --json`
spends its time after the interpreter starts (phases timed inside the process: noise hits them less).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUESTION = "llama 3.3 70b fp8 8k context"
FLAGS = ["--model", "llama-3.3-70b", "--weights", "fp8", "--context", "8192"]


def headroom_command() -> list[str]:
    """The `headroom` console script of this interpreter's environment, else `python -m bot.cli`."""
    script = Path(sys.executable).with_name("headroom")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli"]


def commands() -> list[tuple[str, list[str], str | None]]:
    """(label, argv, stdin) of each timed command; the first is the baseline."""
    headroom = headroom_command()
    return [
        ("python -c pass", [sys.executable, "-c", "pass"], None),
        ("plan --json (flags)", [*headroom, "plan", "--json", *FLAGS], None),
        ("plan (flags, table)", [*headroom, "plan", *FLAGS], None),
        ("plan (free text)", [*headroom, "plan", QUESTION], None),
        ("chat (one line)", [*headroom, "chat"], QUESTION + "\n"),
    ]


def warm_catalog_cache() -> str:
    """Fill the catalog cache the CLI reads, so no timed run pays for full validation."""
    from bot.catalog_cache import cache_path, default_cache_dir, load_catalog_cached
    from bot.catalog_files import read_sources
    from engine.catalog.loader import sources_digest

    load_catalog_cached()
    return str(cache_path(default_cache_dir(), sources_digest(read_sources())))


# Timed runs may write and then read .pyc files, as on any user's machine: a shell that sets
# PYTHONDONTWRITEBYTECODE (some sandboxes and containers do) would otherwise make every run
# recompile the project's modules from source and time that instead.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(argv: list[str], stdin: str | None) -> tuple[float, int, str]:
    """Seconds the whole process took, its exit status, and its stderr."""
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    return time.perf_counter() - started, done.returncode, done.stderr


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


#: one `plan --json` in-process, phase by phase (what each part of a start-up costs), printed as JSON
_PHASES = """
import json, sys, time
t = [time.perf_counter()]
import argparse, dataclasses, json, pathlib, re, typing; t.append(time.perf_counter())
import jinja2; t.append(time.perf_counter())
import bot.cli, engine.service, bot.render, bot.catalog_cache; from bot.cli_args import build_parser, flags_of
t.append(time.perf_counter())
catalog = bot.catalog_cache.load_catalog_cached(); t.append(time.perf_counter())
args = build_parser().parse_args(sys.argv[1:]); turn = engine.service.respond("", None, catalog, flags_of(args))
t.append(time.perf_counter())
views = bot.cli._views(); out = json.dumps(views.plan_json(turn.plan)); t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""
PHASE_NAMES = ("standard library", "jinja2", "headroom's modules", "compiled catalog", "flags + plan", "notes + JSON")


def print_phases(runs: int) -> None:
    """Where a `plan --json` spends its time after the interpreter starts: min and median per phase."""
    found: list[list[float]] = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", _PHASES, "plan", "--json", *FLAGS], capture_output=True, text=True, env=ENV)
        if done.returncode == 0:
            found.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if not found:
        return
    print(f"\nplan --json in one process, phase by phase ({len(found)} runs)\n")
    print(f"{'phase':<22} {'min ms':>10} {'median ms':>10}")
    for i, name in enumerate(PHASE_NAMES):
        column = [row[i] for row in found]
        print(f"{name:<22} {min(column) * 1e3:>10.1f} {statistics.median(column) * 1e3:>10.1f}")
    totals = [sum(row) for row in found]
    print(f"{'total':<22} {min(totals) * 1e3:>10.1f} {statistics.median(totals) * 1e3:>10.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command (default 15, at least 1)")
    args = parser.parse_args(argv)
    runs = max(1, args.runs)

    print(f"python: {sys.executable} ({sys.version.split()[0]})")
    print(f"headroom: {' '.join(headroom_command())}")
    print(f"catalog cache warmed first: {warm_catalog_cache()}")
    if "PYTHONDONTWRITEBYTECODE" in os.environ:
        print("PYTHONDONTWRITEBYTECODE is set here; the timed runs unset it, so they use .pyc files like a user's machine")
    todo = commands()
    times: dict[str, list[float]] = {label: [] for label, _, _ in todo}
    failures: dict[str, tuple[int, str]] = {}
    for round_no in range(runs + 1):  # round 0 warms the OS file cache and .pyc files: not counted
        shift = round_no % len(todo)
        for label, command, stdin in todo[shift:] + todo[:shift]:
            seconds, status, stderr = run_once(command, stdin)
            if status != 0:
                failures.setdefault(label, (status, stderr))
            if round_no:
                times[label].append(seconds)

    baseline = statistics.median(times[todo[0][0]])
    print(f"\n{runs} runs each, interleaved, after 1 warm-up round\n")
    print(f"{'command':<22} {'median ms':>10} {'p90 ms':>8} {'min ms':>7} {'x python':>9}")
    for label, _, _ in todo:
        median = statistics.median(times[label])
        flag = "  FAILED" if label in failures else ""
        print(
            f"{label:<22} {median * 1e3:>10.1f} {percentile(times[label], 0.9) * 1e3:>8.1f} "
            f"{min(times[label]) * 1e3:>7.1f} {median / baseline:>9.2f}{flag}"
        )
    print_phases(runs)
    for label, (status, stderr) in failures.items():
        tail = "\n    ".join(stderr.strip().splitlines()[-5:])
        print(f"\n{label} exited {status} (its times are of a failing run):\n    {tail}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

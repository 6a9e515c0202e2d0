"""Start-up time of the `headroom` CLI: whole processes, wall clock, against a bare interpreter.

    python -m benchmarks.startup [--runs 15]

A CLI answer is dominated by process start (imports, catalog loading), not by planning, so
this times whole subprocesses. The commands run interleaved, in a rotated order each round,
so machine noise hits all of them alike; one warm-up round is not counted. The catalog cache
(bot.catalog_cache) is warmed first, as it is on any machine after the first run.

`plan --json (flags)` asks the same question each run, so from the second run on its notes'
words come from the note-words cache (bot/note_words.py) and Jinja is not loaded; `plan --json
(new numbers)` asks with another context length each run, in a cache folder with no words kept,
so it renders every note with the templates, as a first question does.
Prints median, p90, min and each median's ratio to `python -c pass`, then where one `plan --json`
spends its time after the interpreter starts (phases timed inside the process: noise hits them less).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

QUESTION = "llama 3.3 70b fp8 8k context"
FLAGS = ["--model", "llama-3.3-70b", "--weights", "fp8", "--context", "8192"]


def headroom_command() -> list[str]:
    """The `headroom` console script of this interpreter's environment, else `python -m bot.cli`."""
    script = Path(sys.executable).with_name("headroom")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli"]


class Command(NamedTuple):
    label: str
    argv: Callable[[int], list[str]]  # the round's command line
    stdin: str | None = None
    cache_dir: str | None = None  # $HEADROOM_CACHE_DIR for it (None: the user's)


def commands(fresh_words: str) -> list[Command]:
    """The timed commands; the first is the baseline. `fresh_words`: a cache folder with a catalog and no words."""
    headroom = headroom_command()
    new_numbers = lambda n: [*headroom, "plan", "--json", *FLAGS[:-1], str(8192 + n)]  # noqa: E731
    return [
        Command("python -c pass", lambda n: [sys.executable, "-c", "pass"]),
        Command("plan --json (flags)", lambda n: [*headroom, "plan", "--json", *FLAGS]),
        Command("plan --json (new numbers)", new_numbers, cache_dir=fresh_words),
        Command("plan (flags, table)", lambda n: [*headroom, "plan", *FLAGS]),
        Command("plan (free text)", lambda n: [*headroom, "plan", QUESTION]),
        Command("chat (one line)", lambda n: [*headroom, "chat"], QUESTION + "\n"),
    ]


def warm_catalog_cache() -> str:
    """Fill the catalog cache the CLI reads, so no timed run pays for full validation."""
    from bot.catalog_cache import cache_file, cache_folder, load_catalog_cached
    from bot.catalog_files import read_sources
    from engine.catalog.loader import sources_digest

    load_catalog_cached()
    return cache_file(cache_folder(), sources_digest(read_sources()))


def folder_without_words(catalog_file: str) -> str:
    """A temporary cache folder holding the compiled catalog and nothing else: every plan's words are rendered."""
    folder = tempfile.mkdtemp(prefix="headroom-startup-")
    shutil.copy(catalog_file, folder)
    return folder


# Timed runs may write and then read .pyc files, as on any user's machine: a shell that sets
# PYTHONDONTWRITEBYTECODE (some sandboxes and containers do) would otherwise make every run
# recompile the project's modules from source and time that instead.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(argv: list[str], stdin: str | None, cache_dir: str | None = None) -> tuple[float, int, str]:
    """Seconds the whole process took, its exit status, and its stderr."""
    env = ENV if cache_dir is None else {**ENV, "HEADROOM_CACHE_DIR": cache_dir}
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    return time.perf_counter() - started, done.returncode, done.stderr


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


#: one `plan --json` in-process, phase by phase (what each part of a start-up costs), printed as JSON; the last
#: figure is not a phase of it: what rendering the notes with the templates costs instead (a new question)
_PHASES = """
import json, sys, time
t = [time.perf_counter()]
import argparse, hashlib, json, os, re, typing; t.append(time.perf_counter())
import bot.cli, bot.catalog_cache, bot.note_words, engine.service; from bot.cli_args import build_parser, flags_of
t.append(time.perf_counter())
catalog = bot.catalog_cache.load_catalog_cached(); t.append(time.perf_counter())
args = build_parser(sys.argv[1:]).parse_args(sys.argv[1:]); turn = engine.service.respond("", None, catalog, flags_of(args))
t.append(time.perf_counter())
say = lambda: bot.cli._views().say
kept = bot.note_words.plan_json_text(turn, os.path.join(bot.catalog_cache.cache_folder(), "words"), say, None)
t.append(time.perf_counter())
rendered = bot.note_words.plan_json_text(turn, None, say, None); t.append(time.perf_counter())
assert "jinja2" in sys.modules and kept == rendered
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""
PHASE_NAMES = ("standard library", "headroom's modules", "compiled catalog", "flags + plan", "kept words + JSON")


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
    print(f"{'phase':<28} {'min ms':>7} {'median ms':>10}")
    for i, name in enumerate(PHASE_NAMES):
        column = [row[i] for row in found]
        print(f"{name:<28} {min(column) * 1e3:>7.1f} {statistics.median(column) * 1e3:>10.1f}")
    totals = [sum(row[: len(PHASE_NAMES)]) for row in found]
    print(f"{'total':<28} {min(totals) * 1e3:>7.1f} {statistics.median(totals) * 1e3:>10.1f}")
    rendering = [row[len(PHASE_NAMES)] for row in found]
    print(f"{'instead: Jinja + rendering':<28} {min(rendering) * 1e3:>7.1f} {statistics.median(rendering) * 1e3:>10.1f}"
          "   (a question whose notes were never said)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command (default 15, at least 1)")
    args = parser.parse_args(argv)
    runs = max(1, args.runs)

    print(f"python: {sys.executable} ({sys.version.split()[0]})")
    print(f"headroom: {' '.join(headroom_command())}")
    catalog_file = warm_catalog_cache()
    print(f"catalog cache warmed first: {catalog_file}")
    if "PYTHONDONTWRITEBYTECODE" in os.environ:
        print("PYTHONDONTWRITEBYTECODE is set here; the timed runs unset it, so they use .pyc files like a user's machine")
    fresh = folder_without_words(catalog_file)
    todo = commands(fresh)
    times: dict[str, list[float]] = {c.label: [] for c in todo}
    failures: dict[str, tuple[int, str]] = {}
    try:
        for round_no in range(runs + 1):  # round 0 warms the OS file cache and .pyc files: not counted
            shift = round_no % len(todo)
            for c in todo[shift:] + todo[:shift]:
                seconds, status, stderr = run_once(c.argv(round_no), c.stdin, c.cache_dir)
                if status != 0:
                    failures.setdefault(c.label, (status, stderr))
                if round_no:
                    times[c.label].append(seconds)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)

    baseline = statistics.median(times[todo[0].label])
    print(f"\n{runs} runs each, interleaved, after 1 warm-up round\n")
    print(f"{'command':<28} {'median ms':>10} {'p90 ms':>8} {'min ms':>7} {'x python':>9}")
    for c in todo:
        median = statistics.median(times[c.label])
        flag = "  FAILED" if c.label in failures else ""
        print(
            f"{c.label:<28} {median * 1e3:>10.1f} {percentile(times[c.label], 0.9) * 1e3:>8.1f} "
            f"{min(times[c.label]) * 1e3:>7.1f} {median / baseline:>9.2f}{flag}"
        )
    print_phases(runs)
    for label, (status, stderr) in failures.items():
        tail = "\n    ".join(stderr.strip().splitlines()[-5:])
        print(f"\n{label} exited {status} (its times are of a failing run):\n    {tail}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""`headroom feedback export`: stored feedback as CSV rows shaped like tests/calibration/vllm_memory.csv.

Real outcomes are how the memory model gets checked against the world: each row has the calibration
file's columns where the feedback says something (the request as the engine understood it, the GPUs
the answer suggested, the figures a pasted start-up log printed), blank where it does not, then the
outcome columns (the verdict, how many requests it held, the release that answered). A reviewer
turns the rows worth keeping into calibration rows; nothing here edits the calibration file.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from pydantic import ValidationError

from bot.feedback import FeedbackRecord
from engine.constraints import Invalid
from engine.request import Request

if TYPE_CHECKING:
    from bot.render import Views

Note = Callable[[str, str, int | None], object]

CALIBRATION_COLUMNS = (
    "source", "engine", "engine_version", "model", "weights_dtype", "kv_dtype", "gpu", "gpu_mem_gib", "tp", "pp",
    "gpu_mem_util", "max_model_len", "weights_gib", "activation_peak_gib", "non_torch_gib", "kv_cache_gib",
    "kv_tokens", "max_concurrency", "cuda_graph_gib", "notes",
)  # fmt: skip
OUTCOME_COLUMNS = ("feedback", "verdict", "requests_held", "predicted_max_requests", "instance", "gpus", "log_kind",
                   "request", "digest", "at")  # fmt: skip
#: calibration column -> the paste reader's name for the same figure
_LOG_FIGURES = {
    "weights_gib": "weights_gib", "activation_peak_gib": "activation_peak_gib", "non_torch_gib": "non_torch_gib",
    "kv_cache_gib": "kv_cache_gib", "kv_tokens": "kv_cache_tokens", "max_concurrency": "max_concurrency",
    "cuda_graph_gib": "cudagraph_gib",
}  # fmt: skip


#: what a spreadsheet reads as the start of a formula (or a command, in old ones): such text is prefixed with '
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(value, ".6g")
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_STARTS):  # feedback is user text: never a formula
        return "'" + text
    return text


def row(record: FeedbackRecord, note: str) -> dict[str, str]:
    """One record as a calibration-shaped row; a figure the log printed wins over the plan's setting."""
    asked, told, log = record.request, record.suggested, record.log
    figures = log.numbers if log else {}
    try:
        context: int | None = Request.from_data(asked).context
    except (Invalid, TypeError):
        context = None
    cells: dict[str, object] = {
        "source": f"headroom feedback {record.at}", "engine": "vLLM",
        "engine_version": (log.vllm_version if log else None) or asked.get("vllm_version"),
        "model": asked.get("model"), "weights_dtype": asked.get("weights"), "kv_dtype": asked.get("kv_dtype", "auto"),
        "gpu": (log.gpu if log else None) or told.gpu, "gpu_mem_gib": (log.gpu_mem_gib if log else None) or told.gpu_mem_gib,
        "tp": figures.get("tp", told.tp), "pp": figures.get("pp", told.pp),
        "gpu_mem_util": figures.get("gpu_memory_utilization", told.gpu_mem_util),
        "max_model_len": figures.get("max_model_len", context), "notes": note,
        **{column: figures.get(name) for column, name in _LOG_FIGURES.items()},
        "feedback": record.kind, "verdict": record.value, "requests_held": record.held, "predicted_max_requests": told.max_requests, "instance": told.instance or asked.get("instance"),
        "gpus": told.gpus, "log_kind": log.kind if log else None,
        "request": json.dumps(asked, sort_keys=True, separators=(",", ":")), "digest": record.digest, "at": record.at,
    }  # fmt: skip
    return {column: _cell(cells.get(column)) for column in CALIBRATION_COLUMNS + OUTCOME_COLUMNS}


def records(raw: list[str]) -> tuple[list[FeedbackRecord], int]:
    """Valid records, oldest first, and how many stored values were not records (another version's, damaged)."""
    found: list[FeedbackRecord] = []
    for value in raw:
        try:
            found.append(FeedbackRecord.model_validate_json(value))
        except ValidationError:
            continue
    return sorted(found, key=lambda r: r.at), len(raw) - len(found)


def write_csv(found: list[FeedbackRecord], out: TextIO, note: Note) -> None:
    """`note(record)`: the notes cell, worded in templates/assistant.j2."""
    writer = csv.DictWriter(out, fieldnames=CALIBRATION_COLUMNS + OUTCOME_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in found:
        writer.writerow(row(record, str(note(record.kind, record.value, record.held))))


async def _stored(url: str) -> list[str]:
    from bot.store import RedisStore

    store = RedisStore(url, timeout_s=5.0)
    try:
        return list((await store.items("feedback:")).values())
    finally:
        await store.close()


def run_feedback(args: argparse.Namespace, views: Views) -> int:
    """`headroom feedback export`: exit 2 without a Redis URL or when Redis cannot be read."""
    from redis.exceptions import RedisError

    from bot.settings import Settings

    url = args.redis_url or Settings().redis_url
    if not url:
        print("headroom: set REDIS_URL (or --redis-url) to the bot's Redis to export its feedback", file=sys.stderr)
        return 2
    try:
        raw = asyncio.run(_stored(url))
    except (RedisError, OSError) as exc:
        print(f"headroom: could not read feedback from Redis ({type(exc).__name__})", file=sys.stderr)
        return 2
    found, skipped = records(raw)
    note = views.macros("assistant.j2").export_note
    if args.output and args.output != "-":
        with open(args.output, "w", newline="", encoding="utf-8") as out:
            write_csv(found, out, note)
    else:
        write_csv(found, sys.stdout, note)
    if skipped:
        print(f"headroom: skipped {skipped} stored values that are not feedback records", file=sys.stderr)
    return 0

"""`headroom`'s command-line grammar: subcommands, flags, their checks, and which Request field each sets."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.dtypes import KV_DTYPES, WEIGHT_DTYPES

if TYPE_CHECKING:
    from engine.errors import HeadroomError


def _bad(flag: str, value: str, kind: str) -> HeadroomError:
    from engine.errors import HeadroomError

    return HeadroomError("bad_flag", flag=flag, value=value, kind=kind)


def _concurrency(flag: str, text: str) -> int | str:
    if text.strip().lower() == "max":
        return "max"
    try:
        return int(text)
    except ValueError:
        raise _bad(flag, text, "users") from None


def _tokens(flag: str, text: str) -> int:
    """A token count as the request language reads one: 8192, 8k, 1.5k, 1m (and 8,192)."""
    from engine.request import tokens

    try:
        return tokens(text.replace(",", "").replace("_", "").strip().lower())
    except ValueError:
        raise _bad(flag, text, "tokens") from None


def _number(flag: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _bad(flag, text, "number") from None


def _whole(flag: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _bad(flag, text, "whole") from None


#: how each flag's text becomes a value; ranges are the Request's to check (worded in templates/errors.j2)
_CONVERT = {
    "context": _tokens, "input_tokens": _tokens, "output_tokens": _tokens, "concurrency": _concurrency,
    "gpus": _whole, "tp": _whole, "pp": _whole, "nodes": _whole, "gpu_memory_utilization": _number,
    "max_num_seqs": _whole, "max_num_batched_tokens": _tokens, "cpu_offload_gb": _number,
    "kv_cache_memory_bytes": _whole,
}  # fmt: skip
_CONVERT |= {"speculative_tokens": _whole, "max_loras": _whole, "max_lora_rank": _whole}  # issue 10


def _add_plan_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="*", help='the question in words, e.g. "llama 3.3 70b fp8 8k context 16 users"')
    parser.add_argument("--model", help="model: HF id (meta-llama/Llama-3.3-70B-Instruct) or name (llama-3.3-70b)")
    parser.add_argument("--weights", choices=WEIGHT_DTYPES, help="weight precision (default: the checkpoint's own)")
    parser.add_argument("--kv-dtype", choices=KV_DTYPES, default=None, help="KV-cache precision (default: auto)")
    parser.add_argument("--context", help="max tokens per request (default 8192; 8k, 128k work)")
    parser.add_argument("--input-tokens", help="prompt tokens of a typical request")
    parser.add_argument("--output-tokens", help="output tokens of a typical request")
    parser.add_argument("--concurrency", help="concurrent users, or 'max' (default 1)")
    parser.add_argument("--instance", help="evaluate this EC2 instance type only (e.g. g6e.12xlarge)")
    parser.add_argument("--gpu", help="evaluate a GPU type instead of EC2 instances (e.g. h100)")
    parser.add_argument("--gpus", help="how many of --gpu (default 1)")
    parser.add_argument("--tp", help="tensor-parallel size")
    parser.add_argument("--pp", help="pipeline-parallel size (stages on one instance, or across --nodes)")
    parser.add_argument("--nodes", help="how many of --instance, joined by pipeline parallelism (default 1)")
    parser.add_argument(
        "--command",
        dest="serve_command",
        help="a vllm serve command to evaluate (with --instance / --gpu), e.g. 'vllm serve X --tensor-parallel-size 4'",
    )
    parser.add_argument("--gpu-memory-utilization", help="vLLM's --gpu-memory-utilization")
    parser.add_argument("--vllm-version", help="vLLM version whose memory accounting to follow (e.g. 0.19)")
    parser.add_argument("--region", help="AWS region code: rank only the types offered there, at its prices (default us-east-1)")
    parser.add_argument("--max-num-seqs", help="vLLM's --max-num-seqs (default: vLLM's for the GPU)")
    parser.add_argument("--max-num-batched-tokens", help="vLLM's --max-num-batched-tokens (default: vLLM's for the GPU)")
    parser.add_argument("--enforce-eager", action="store_true", default=None, help="vLLM's --enforce-eager")
    parser.add_argument("--offline", action="store_true", default=None,
                        help="plan for vLLM's offline LLM() class (its batch defaults) and print the LLM() call")
    parser.add_argument("--cpu-offload-gb", help="vLLM's --cpu-offload-gb (GiB of weights per GPU kept in host memory)")
    parser.add_argument("--kv-cache-memory-bytes", help="vLLM's --kv-cache-memory-bytes (the KV pool, instead of utilization)")
    parser.add_argument("--sort", choices=("cost", "speed"), help="rank by $/hour (default) or per-user speed")
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    parser.add_argument("--blocks", action="store_true", help="print the Slack Block Kit message (text + blocks)")
    parser.add_argument("--all", action="store_true", help="list every feasible instance, not one per GPU layout")
    # issue 15: the budget as a picture
    parser.add_argument("--chart", metavar="PNG", help="also draw the memory budget per GPU as a PNG to this file "
                        "('-': the PNG on stdout, the answer on stderr)")  # fmt: skip
    # issue 10: vision-language models served for text, speculative decoding, LoRA
    parser.add_argument("--text-only", action="store_const", const=True, help="serve a VLM for text only (no images)")
    parser.add_argument("--draft", help="speculative decoding with this draft model, or 'mtp' for the model's own layers")
    parser.add_argument("--speculative-tokens", help="tokens the drafter proposes per step (default 1)")
    parser.add_argument("--speculative-config", help='vLLM\'s JSON, e.g. \'{"model": "llama-3.2-1b", "num_speculative_tokens": 4}\'')
    parser.add_argument("--max-loras", help="LoRA adapters served at once (vLLM's --max-loras)")
    parser.add_argument("--max-lora-rank", help="the largest LoRA rank served (vLLM's --max-lora-rank)")


class _Version(argparse.Action):
    """`--version`, looked up only when asked (importlib.metadata costs start-up time)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("headroom")
        except PackageNotFoundError:
            found = "(not installed)"
        print(f"headroom {found}")
        parser.exit()


def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size reads it: $COLUMNS, else the terminal's, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, given the width: its own default imports shutil (with zlib, bz2 and lzma),
    3 ms of every start-up, because argparse builds a formatter to check each flag it is given (issue 14)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_columns() - 2)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help is laid out by ``_HelpFormatter``; its subcommands' parsers are of this class too."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(formatter_class=_HelpFormatter, **kwargs)  # type: ignore[arg-type]


def _plan(sub: Any) -> None:
    plan = sub.add_parser(
        "plan",
        help="plan a deployment",
        description="Plan a vLLM deployment on EC2, from words, flags, or both (a flag that contradicts the words is refused).",
    )
    _add_plan_flags(plan)


def _diagnose(sub: Any) -> None:
    diagnose = sub.add_parser(
        "diagnose",
        help="read a pasted vLLM start-up log, traceback or command and say what failed",
        description="Diagnose a vLLM start-up: FILE, or - (or nothing) for standard input. Give --instance or "
        "--gpu/--gpus when the paste does not say which GPUs it ran on.",
    )
    diagnose.add_argument("file", nargs="?", default="-", help="a file holding the paste, or - for standard input")
    diagnose.add_argument("--instance", help="the EC2 instance it ran on (e.g. g6e.12xlarge)")
    diagnose.add_argument("--gpu", help="the GPU it ran on (e.g. l40s)")
    diagnose.add_argument("--gpus", help="how many of --gpu")
    diagnose.add_argument("--model", help="the model, when the paste does not name it")
    diagnose.add_argument("--json", action="store_true", help="print the diagnosis as one JSON object")


def _chat(sub: Any) -> None:
    chat = sub.add_parser(
        "chat",
        help="a conversation: each line is a follow-up to the last plan",
        description="Ask, then follow up ('what about 32k?', 'int4 instead', 'only g6e', 'start over'). Ctrl-D ends.",
    )
    chat.add_argument("--json", action="store_true", help="print each plan as JSON instead of a table")


def _serve(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the Slack bot",
        description="Run the Slack bot: HTTP (Events API, /slack/events) or --socket (Socket Mode, for local use). "
        "Reads SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN, REDIS_URL, SLACK_API_URL, PORT.",
    )
    serve.add_argument("--port", type=int, help="HTTP port (default: $PORT or 3000)")
    serve.add_argument("--host", default="0.0.0.0", help="interface to listen on (default 0.0.0.0)")
    serve.add_argument("--socket", action="store_true", help="Socket Mode instead of HTTP (needs SLACK_APP_TOKEN)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1; with several, use REDIS_URL so they share state)",
    )


def _feedback(sub: Any) -> None:
    """Issue 15: `headroom feedback export` (answers' feedback from the bot's Redis, as calibration-shaped CSV)."""
    feedback = sub.add_parser("feedback", help="work with the feedback given on Slack answers")
    feedback_sub = feedback.add_subparsers(dest="feedback_command", required=True)
    export = feedback_sub.add_parser(
        "export",
        help="print stored feedback as CSV rows in the calibration file's columns plus outcome columns",
        description="Read the feedback the Slack bot stored in Redis and print it as CSV: the columns of "
        "tests/calibration/vllm_memory.csv (blank where unknown), then the outcome columns.",
    )
    export.add_argument("--redis-url", help="the bot's Redis (default: $REDIS_URL)")
    export.add_argument("--output", "-o", help="write to this file instead of standard output")


def _catalog(sub: Any) -> None:
    """Regions (issue 12): `headroom catalog refresh`."""
    catalog = sub.add_parser("catalog", help="the catalog's data: refresh per-region prices and offerings from AWS")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True)
    refresh = catalog_sub.add_parser(
        "refresh",
        help="read on-demand and spot prices and per-region offerings from the AWS APIs (needs AWS credentials)",
        description="Writes regions.yaml into the cache folder ($HEADROOM_CACHE_DIR); plans use it while it validates.",
    )
    refresh.add_argument("--regions", help="comma-separated region codes (default: every region the account sees)")
    refresh.add_argument("--cache-dir", help="where to write (default: $HEADROOM_CACHE_DIR or ~/.cache/headroom)")


#: each subcommand and what adds its parser, in the order `headroom --help` lists them
COMMANDS = {"plan": _plan, "diagnose": _diagnose, "chat": _chat, "serve": _serve, "feedback": _feedback,
            "catalog": _catalog}  # fmt: skip


def _named(argv: Sequence[str] | None) -> str | None:
    """The subcommand `argv` opens with; None (build them all) when it opens with an option instead: help in
    any spelling argparse accepts ("--he"), "--", or an unknown word."""
    first = next(iter(argv or ()), None)
    return first if first in COMMANDS else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole grammar; given the command line, only the parser of the subcommand it names.

    argparse builds each subcommand's parser and looks up translations of its strings (about 3 ms of a
    start-up for all of them, issue 14); the usage line still names every subcommand.
    """
    parser = _Parser(
        prog="headroom",
        description="Which EC2 GPU instance will serve your LLM with vLLM, whether it will OOM, and what it costs.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print headroom's version and exit")
    only = _named(argv)
    every = "{" + ",".join(COMMANDS) + "}" if only else None  # usage lines name the subcommands left out too
    sub = parser.add_subparsers(dest="command", required=True, metavar=every)
    for name, add in COMMANDS.items():
        if only in (None, name):
            add(sub)
    return parser


_FLAG_FIELDS = {
    "model": "model",
    "weights": "weights",
    "kv_dtype": "kv_dtype",
    "context": "context_tokens",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "concurrency": "concurrency",
    "instance": "instance",
    "gpu": "gpu",
    "gpus": "gpus",
    "tp": "tp",
    "pp": "pp",
    "nodes": "nodes",
    "gpu_memory_utilization": "gpu_memory_utilization",
    "vllm_version": "vllm_version",
    "max_num_seqs": "max_num_seqs",
    "max_num_batched_tokens": "max_num_batched_tokens",
    "enforce_eager": "enforce_eager",
    "cpu_offload_gb": "cpu_offload_gb",
    "kv_cache_memory_bytes": "kv_cache_memory_bytes",
    "offline": "offline",
    "region": "region",
    "sort": "sort",
    # issue 10
    "text_only": "text_only",
    "draft": "draft",
    "speculative_tokens": "speculative_tokens",
    "max_loras": "max_loras",
    "max_lora_rank": "lora_rank",
}


def flags_of(args: argparse.Namespace) -> dict[str, object]:
    """The Request fields the flags set (None flags left out, so the words or defaults decide).

    Raises HeadroomError("bad_flag") for text that is not a value of the flag's kind.
    """
    found: dict[str, object] = {}
    for flag, field in _FLAG_FIELDS.items():
        value = getattr(args, flag)
        if value is not None:
            convert = _CONVERT.get(flag)
            found[field] = convert("--" + flag.replace("_", "-"), value) if convert else value
    if getattr(args, "speculative_config", None):  # issue 10: vLLM's own JSON
        from engine.parse_extras import speculative_fields

        spec = speculative_fields("--speculative-config", args.speculative_config)
        if spec is None:
            raise _bad("--speculative-config", args.speculative_config, "draft")
        found |= spec
    return found

"""`headroom` command line: `plan` (words and flags), `chat` (a conversation), `serve` (the Slack bot).

`plan` and `chat` are thin loops around the conversation service (``engine.service``): read
input, call it, render with the templates, print. Imports are lazy so that `plan` starts fast
and never loads the Slack, Redis or HTTP stacks.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from engine.dtypes import KV_DTYPES, WEIGHT_DTYPES

if TYPE_CHECKING:
    from bot.render import Views
    from engine.catalog.loader import Catalog
    from engine.errors import HeadroomError
    from engine.service import Turn

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _concurrency(text: str) -> int | str:
    if text.strip().lower() == "max":
        return "max"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of users; use e.g. 16 or 'max'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"concurrency must be at least 1 (got {value}); use e.g. 16 or 'max'")
    return value


def _positive_int(text: str) -> int:
    cleaned = text.replace(",", "").replace("_", "").strip().lower()
    scale = 1
    if cleaned.endswith("k"):
        cleaned, scale = cleaned[:-1], 1024
    elif cleaned.endswith("m"):
        cleaned, scale = cleaned[:-1], 1024 * 1024
    try:
        value = int(float(cleaned) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a token count; use e.g. 8192 or 8k") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive (got {text})")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number; use e.g. 0.9") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"gpu memory utilization must be in (0, 1], got {value}")
    return value


def _add_plan_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="*", help='the question in words, e.g. "llama 3.3 70b fp8 8k context 16 users"')
    parser.add_argument("--model", help="model: HF id (meta-llama/Llama-3.3-70B-Instruct) or name (llama-3.3-70b)")
    parser.add_argument("--weights", choices=WEIGHT_DTYPES, help="weight precision (default: the checkpoint's own)")
    parser.add_argument("--kv-dtype", choices=KV_DTYPES, default=None, help="KV-cache precision (default: auto)")
    parser.add_argument("--context", type=_positive_int, help="max tokens per request (default 8192)")
    parser.add_argument("--input-tokens", type=_positive_int, help="prompt tokens of a typical request")
    parser.add_argument("--output-tokens", type=_positive_int, help="output tokens of a typical request")
    parser.add_argument("--concurrency", type=_concurrency, help="concurrent users, or 'max' (default 1)")
    parser.add_argument("--instance", help="evaluate this EC2 instance type only (e.g. g6e.12xlarge)")
    parser.add_argument("--gpu", help="evaluate a GPU type instead of EC2 instances (e.g. h100)")
    parser.add_argument("--gpus", type=int, help="how many of --gpu (default 1)")
    parser.add_argument("--tp", type=int, help="tensor-parallel size")
    parser.add_argument("--gpu-memory-utilization", type=_fraction, help="vLLM's --gpu-memory-utilization")
    parser.add_argument("--vllm-version", help="vLLM version whose memory accounting to follow (e.g. 0.19)")
    parser.add_argument("--region", help="AWS region for prices (catalog prices are us-east-1)")
    parser.add_argument("--sort", choices=("cost", "speed"), help="rank by $/hour (default) or per-user speed")
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    parser.add_argument("--blocks", action="store_true", help="print the Slack Block Kit message (text + blocks)")
    parser.add_argument("--all", action="store_true", help="list every feasible instance, not one per GPU layout")


class _Version(argparse.Action):
    """`--version`, looked up only when asked (importlib.metadata costs start-up time)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("headroom")
        except PackageNotFoundError:
            found = "(not installed)"
        parser.exit(message=f"headroom {found}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headroom",
        description="Which EC2 GPU instance will serve your LLM with vLLM, whether it will OOM, and what it costs.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print headroom's version and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser(
        "plan",
        help="plan a deployment",
        description="Plan a vLLM deployment on EC2, from words, flags, or both (flags win).",
    )
    _add_plan_flags(plan)
    chat = sub.add_parser(
        "chat",
        help="a conversation: each line is a follow-up to the last plan",
        description="Ask, then follow up ('what about 32k?', 'int4 instead', 'only g6e', 'start over'). Ctrl-D ends.",
    )
    chat.add_argument("--json", action="store_true", help="print each plan as JSON instead of a table")
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
    "gpu_memory_utilization": "gpu_memory_utilization",
    "vllm_version": "vllm_version",
    "region": "region",
    "sort": "sort",
}


def _flags(args: argparse.Namespace) -> dict[str, object]:
    return {field: getattr(args, flag) for flag, field in _FLAG_FIELDS.items() if getattr(args, flag) is not None}


def _catalog() -> Catalog:
    from bot.catalog_cache import load_catalog_cached

    return load_catalog_cached()


def _views() -> Views:
    from bot.catalog_cache import default_cache_dir
    from bot.render import Views, build_environment

    return Views(build_environment(default_cache_dir() / "templates"))


def _json_error(views: Views, exc: HeadroomError) -> str:
    return json.dumps(
        {
            "error": {
                "code": exc.code,
                "message": views.error(exc),
                "suggestions": exc.suggestions,
                "understood": {k: str(v) for k, v in views.understood(exc).items()},
            }
        },
        indent=2,
    )


def run_plan(args: argparse.Namespace) -> int:
    from engine.errors import ParseError
    from engine.service import respond

    text, flags = " ".join(args.text or []), _flags(args)
    views = _views()
    turn = respond(text, None, _catalog(), flags) if text.strip() or flags else None
    if turn is None or turn.kind != "answer":
        error = turn.error if turn and turn.error else ParseError("no_model_given")
        if args.json:
            print(_json_error(views, error))
        elif args.blocks:
            from bot.blocks import SlackViews

            message = SlackViews(views).error(error)
            print(json.dumps({"text": message.text, "blocks": message.blocks}, indent=2, ensure_ascii=False))
        else:
            print(views.error_line(error), file=sys.stderr)
        return EXIT_USAGE
    assert turn.plan is not None and turn.request is not None
    if args.json:
        print(json.dumps({**views.plan_json(turn.plan), "not_understood": list(turn.unread)}, indent=2))
    elif args.blocks:
        from bot.blocks import SlackViews

        message = SlackViews(views).answer(turn.plan, turn.request, more=args.all)
        print(json.dumps({"text": message.text, "blocks": message.blocks}, indent=2, ensure_ascii=False))
    else:
        print(views.terminal(turn.plan, limit=100 if args.all else 8, unread=turn.unread, show_all=args.all), end="")
    return EXIT_OK


def run_chat(args: argparse.Namespace, lines: Iterable[str] | None = None) -> int:
    """A terminal conversation: the first line asks, each next line follows up on the last plan."""
    from engine.service import Memory, respond

    views, catalog = _views(), _catalog()
    interactive = lines is None and sys.stdin.isatty()
    if interactive:
        print(views.macros("chat.j2").greeting())
    memory: Memory | None = None
    for raw in lines if lines is not None else _prompted(interactive):
        text = raw.strip()
        if not text:
            continue
        if text.lower() in {"quit", "exit", "bye"}:
            break
        turn = _guarded(lambda: respond(text, memory, catalog), lambda line: print(line))  # noqa: B023
        if turn is None:
            continue  # an internal error, reported; the conversation keeps its memory
        memory = turn.memory if turn.memory is not None else memory
        _show_turn(views, turn, args.json)
    return EXIT_OK


def _show_turn(views: Views, turn: Turn, as_json: bool) -> None:
    if turn.kind != "answer":
        if turn.error is not None:
            print(views.error_line(turn.error))
        elif turn.kind == "help":
            print(views.macros("chat.j2").greeting())
        return
    assert turn.plan is not None
    if turn.changes is not None:
        print(views.changes(turn.changes), end="")
    shown = views.plan_json(turn.plan) | {"not_understood": list(turn.unread)}
    print(json.dumps(shown) if as_json else views.terminal(turn.plan, unread=turn.unread), end="\n")


def _guarded(work: Callable[[], Turn], say: Callable[[str], None]) -> Turn | None:
    """The terminal's error boundary: a bug prints a reference (the traceback goes to a log file), never a trace."""
    try:
        return work()
    except Exception:  # noqa: BLE001 - the boundary
        say(_internal_error())
        return None


def _internal_error() -> str:
    """Log the current exception with a reference id; the user-facing line names the reference and the log."""
    from engine.errors import HeadroomError

    reference = uuid.uuid4().hex[:12]
    where = _error_log()
    try:
        with where.open("a", encoding="utf-8") as log_file:
            log_file.write(f"--- reference {reference}\n{traceback.format_exc()}\n")
    except OSError:
        logging.getLogger("headroom.cli").exception("reference %s", reference)
        where = Path("stderr")
    return _views().error_line(HeadroomError("internal", reference=reference, log=str(where)))


def _error_log() -> Path:
    from bot.catalog_cache import default_cache_dir

    folder = default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "errors.log"


def _fail(message: str) -> int:
    print(f"headroom: {message}", file=sys.stderr)
    return EXIT_USAGE


def _prompted(interactive: bool) -> Iterable[str]:
    while True:
        try:
            yield input("> " if interactive else "")
        except EOFError:
            if interactive:
                print()
            return


def run_serve(args: argparse.Namespace) -> int:
    """Start the bot; missing credentials are a clear message and exit 2, not a traceback."""
    import asyncio

    import uvicorn

    from bot.logs import configure_logging
    from bot.server import MissingSettings, create_app, run_socket_mode
    from bot.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level)
    try:
        if args.socket:
            asyncio.run(run_socket_mode(settings))
            return EXIT_OK
        app = create_app(settings)
    except MissingSettings as exc:
        return _fail(str(exc))
    port = args.port or settings.port
    if args.workers > 1:
        if not settings.redis_url:
            return _fail("several --workers need REDIS_URL, so that they share threads and de-duplication")
        # each worker builds its own app from the environment through the factory
        uvicorn.run("bot.server:asgi", factory=True, workers=args.workers, host=args.host, port=port, log_config=None,
                    timeout_graceful_shutdown=30)  # fmt: skip
        return EXIT_OK
    uvicorn.run(app, host=args.host, port=port, log_config=None, timeout_graceful_shutdown=30)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"plan": run_plan, "chat": run_chat, "serve": run_serve}
    try:
        return commands[args.command](args)
    except Exception:  # noqa: BLE001 - the CLI's error boundary: a message with a reference, exit 1
        print(_internal_error(), file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())

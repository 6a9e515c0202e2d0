"""`headroom` command line: plan a deployment from flags (and, later, free text)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence

from pydantic import ValidationError

from engine.catalog.loader import load_catalog
from engine.conversation import StartOver, changes, follow_up
from engine.dtypes import KV_DTYPES, WEIGHT_DTYPES
from engine.errors import HeadroomError, InvalidRequest
from engine.parse import ParseError, parse_fields, parse_request
from engine.plan import Plan, plan_json
from engine.ranking import plan as make_plan
from engine.request import Request

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headroom",
        description="Which EC2 GPU instance will serve your LLM with vLLM, whether it will OOM, and what it costs.",
    )
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


def request_from_args(args: argparse.Namespace) -> Request:
    """Words first, then flags on top: `headroom plan "70b fp8" --context 32k` plans 32k."""
    fields: dict[str, object] = {}
    text = " ".join(args.text or [])
    if text.strip():
        fields.update(parse_fields(text, load_catalog()))
    flags = {field: getattr(args, flag) for flag, field in _FLAG_FIELDS.items() if getattr(args, flag) is not None}
    if "model" in flags:
        fields["model_note"] = None
    fields.update(flags)
    if "model" not in fields:
        if text.strip():
            return parse_request(text, load_catalog())  # raises ParseError saying what was not understood
        raise InvalidRequest('say which model, e.g. headroom plan "llama 3.3 70b fp8 8k" or --model llama-3.3-70b')
    return Request.model_validate(fields)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "request"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(message if where == "request" else f"{where}: {message}")
    return "; ".join(parts)


def _fail(message: str, suggestions: Sequence[str] = ()) -> int:
    print(f"headroom: {message}", file=sys.stderr)
    if suggestions:
        print(f"  did you mean: {', '.join(suggestions)}", file=sys.stderr)
    return EXIT_USAGE


def _error_text(exc: Exception) -> tuple[str, list[str]]:
    """A user-facing message (and suggestions) for anything the engine or parser rejects."""
    if isinstance(exc, ValidationError):
        return _validation_message(exc), []
    if isinstance(exc, ParseError):
        understood = ", ".join(f"{k}={v}" for k, v in exc.understood.items())
        return str(exc) + (f" (understood: {understood})" if understood else ""), exc.suggestions
    if isinstance(exc, InvalidRequest):
        return str(exc), exc.suggestions
    return str(exc), []


def run_plan(args: argparse.Namespace) -> int:
    from bot.render import build_environment, render_terminal

    try:
        request = request_from_args(args)
        result = make_plan(request)
    except (ValidationError, HeadroomError) as exc:
        return _fail(*_error_text(exc))
    if args.json:
        print(json.dumps(plan_json(result), indent=2))
    elif args.blocks:
        from bot.blocks import answer_message

        message = answer_message(build_environment(), result, request, more=args.all)
        print(json.dumps({"text": message.text, "blocks": message.blocks}, indent=2, ensure_ascii=False))
    else:
        print(render_terminal(build_environment(), result, limit=100 if args.all else 8), end="")
    return EXIT_OK


def run_chat(args: argparse.Namespace, lines: Iterable[str] | None = None) -> int:
    """A terminal conversation: the first line asks, each next line follows up on the last plan."""
    from bot.render import build_environment, render_changes, render_terminal

    env, catalog = build_environment(), load_catalog()
    interactive = lines is None and sys.stdin.isatty()
    if interactive:
        print("headroom chat — ask e.g. 'llama 3.3 70b fp8 8k context'; then 'what about 32k?'. Ctrl-D to quit.")
    previous = None
    for raw in lines if lines is not None else _prompted(interactive):
        text = raw.strip()
        if not text:
            continue
        if text.lower() in {"quit", "exit", "bye"}:
            break
        try:
            request = follow_up(text, previous.request_model if previous else None, _top(previous), catalog)
            result = make_plan(request)
        except (ValidationError, HeadroomError) as exc:
            message, suggestions = _error_text(exc)
            print(f"headroom: {message}" + (f"\n  did you mean: {', '.join(suggestions)}" if suggestions else ""))
            if isinstance(exc, StartOver):
                previous = None
            continue
        if previous is not None:
            print(render_changes(env, changes(previous.plan, result)), end="")
        print(json.dumps(plan_json(result)) if args.json else render_terminal(env, result), end="\n")
        previous = _Turn(request, result)
    return EXIT_OK


class _Turn:
    def __init__(self, request: Request, plan: Plan) -> None:
        self.request_model, self.plan = request, plan


def _top(turn: _Turn | None) -> str | None:
    top = turn.plan.top if turn else None
    return top.instance if top else None


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
    if args.command == "plan":
        return run_plan(args)
    if args.command == "chat":
        return run_chat(args)
    if args.command == "serve":
        return run_serve(args)
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

"""`headroom` command line: `plan` (words and flags), `chat` (a conversation), `serve` (the Slack bot).

`plan` and `chat` are thin loops around the conversation service (``engine.service``): read
input, call it, render with the templates, print. Imports are lazy so that `plan` starts fast
and never loads the Slack, Redis or HTTP stacks.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from bot.cli_args import build_parser, flags_of

if TYPE_CHECKING:
    from pathlib import Path

    from bot.render import Views
    from engine.catalog.loader import Catalog
    from engine.errors import HeadroomError
    from engine.service import Turn

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _catalog() -> Catalog:
    from bot.catalog_cache import load_catalog_cached

    return load_catalog_cached()


def _views() -> Views:
    from bot.catalog_cache import default_cache_dir
    from bot.render import Views, build_environment

    return Views(build_environment(default_cache_dir() / "templates"))


def _json_indent() -> int | None:
    """Indented for a person at a terminal; compact into a pipe or file (the indenting encoder is slow)."""
    return 2 if sys.stdout.isatty() else None


def _json_error(views: Views, exc: HeadroomError) -> str:
    understood = {k: str(v) for k, v in views.understood(exc).items()}
    error = {"code": exc.code, "message": views.error(exc), "suggestions": exc.suggestions, "understood": understood}
    return json.dumps({"error": error}, indent=2)


def _plan_json_text(turn: Turn) -> str:
    """`plan --json`: the plan's numbers, and its notes' words kept from an earlier answer or rendered now."""
    from bot.catalog_cache import cache_folder
    from bot.note_words import plan_json_text

    try:
        folder: str | None = os.path.join(cache_folder(), "words")
    except RuntimeError:  # no home directory: render every time
        folder = None
    return plan_json_text(turn, folder, lambda: _views().say, _json_indent())  # Jinja only for notes never said


def run_plan(args: argparse.Namespace) -> int:
    from engine.errors import HeadroomError, ParseError
    from engine.service import Turn, respond

    text = " ".join([*(args.text or []), *([args.serve_command] if args.serve_command else [])])
    try:
        flags = flags_of(args)
        turn = _asked(lambda catalog: respond(text, None, catalog, flags)) if text.strip() or flags else None
    except HeadroomError as exc:  # a flag's text is not a value of its kind
        turn = Turn("error", error=exc)
    if turn is not None and turn.diagnosis is not None:  # the question was a pasted log
        views = _views()
        if args.json:
            print(json.dumps(views.diagnosis_json(turn.diagnosis), indent=2, default=str))
        else:
            print(views.diagnosis(turn.diagnosis, code=lambda s: f"\n  $ {s}"), end="")
        return EXIT_OK
    if turn is None or turn.kind != "answer":
        error = turn.error if turn and turn.error else ParseError("no_model_given")
        views = _views()
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
    if args.chart:  # issue 15: the budget as a PNG (matplotlib is imported only here)
        from bot.chart_png import write_chart

        write_chart(args.chart, turn.plan, _views())
    if args.json:
        print(_plan_json_text(turn))
        return EXIT_OK
    views = _views()
    if args.blocks:
        from bot.blocks import SlackViews

        message = SlackViews(views).answer(turn.plan, turn.request, None, args.all, turn.unread, turn.remarks)
        payload = {"text": message.text, "blocks": message.blocks, "chart_blocks": message.chart_blocks}  # issue 15
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        shown = views.terminal(
            turn.plan, limit=100 if args.all else 8, unread=turn.unread, show_all=args.all, remarks=turn.remarks
        )
        print(shown, end="")
    return EXIT_OK


#: a paste is read up to this size; the reader looks at the start and the end of longer ones
MAX_PASTE_BYTES = 1_048_576


def run_diagnose(args: argparse.Namespace) -> int:
    """`headroom diagnose [FILE|-]`: the paste's diagnosis (text or --json); exit 2 when nothing is recognised."""
    from pathlib import Path

    from engine.paste_reader import read_paste
    from engine.service import diagnosis

    try:
        raw = sys.stdin.read(MAX_PASTE_BYTES) if args.file == "-" else Path(args.file).read_text(errors="replace")
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror}")
    overrides: dict[str, object] = {k: getattr(args, k) for k in ("instance", "gpu", "model") if getattr(args, k)}
    if args.gpus:
        overrides["gpus"] = int(args.gpus) if args.gpus.isdigit() else args.gpus
    views = _views()
    from engine.service import paste_hints

    catalog = _catalog()
    text = raw[:MAX_PASTE_BYTES]
    turn = diagnosis(read_paste(text), catalog, overrides, paste_hints(text, catalog))
    assert turn.diagnosis is not None
    if args.json:
        print(json.dumps(views.diagnosis_json(turn.diagnosis), indent=2, default=str))
    else:
        print(views.diagnosis(turn.diagnosis, code=lambda s: f"\n  $ {s}"), end="")
    d = turn.diagnosis
    unreadable = d.reading.kind == "unrecognised" or any(a.code == "paste_figures_impossible" for a in d.assumed)
    return EXIT_USAGE if unreadable else EXIT_OK


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
        turn = _guarded(lambda: _asked(lambda c: respond(text, memory, c), catalog), lambda line: print(line))  # noqa: B023
        if turn is None:
            continue  # an internal error, reported; the conversation keeps its memory
        memory = turn.memory if turn.memory is not None else memory
        _show_turn(views, turn, args.json)
    return EXIT_OK


def _show_turn(views: Views, turn: Turn, as_json: bool) -> None:
    if turn.diagnosis is not None:
        shown = views.diagnosis_json(turn.diagnosis) if as_json else None
        print(json.dumps(shown, default=str) if shown else views.diagnosis(turn.diagnosis, code=lambda s: f"\n  $ {s}"))
        return
    if turn.kind != "answer":
        if turn.error is not None:
            print(views.error_line(turn.error))
        elif turn.kind == "help":
            print(views.macros("chat.j2").greeting())
        return
    assert turn.plan is not None
    if turn.changes is not None:
        print(views.changes(turn.changes), end="")
    if as_json:  # the document `plan --json` prints, worded by this conversation's templates
        from bot.note_words import plan_json_text

        print(plan_json_text(turn, None, lambda: views.say, None))
    else:
        print(views.terminal(turn.plan, unread=turn.unread, remarks=turn.remarks))


def _asked(ask: Callable[[Catalog], Turn], catalog: Catalog | None = None) -> Turn:
    """issue 12: a turn waiting for a Hub model the catalog lacks reads it (bot/hub.py) and is asked again;
    the Hub client is imported only then."""
    catalog = catalog or _catalog()
    turn = ask(catalog)
    if turn.kind != "error":
        return turn
    from engine.hub_model import wanted_repo  # only for a refusal: a plan never loads the Hub mapping

    if wanted_repo(turn.error) is None:
        return turn
    from bot.catalog_cache import default_cache_dir
    from bot.hub import reader_for, resolve_hub

    def progress(repo: str) -> None:
        if sys.stderr.isatty():
            print(_views().macros("hub.j2").reading(repo), file=sys.stderr)

    return resolve_hub(turn, ask, catalog, reader_for(default_cache_dir()), progress)[0]


def _guarded(work: Callable[[], Turn], say: Callable[[str], None]) -> Turn | None:
    """The terminal's error boundary: a bug prints a reference (the traceback goes to a log file), never a trace."""
    try:
        return work()
    except Exception:  # noqa: BLE001 - the boundary
        say(_internal_error())
        return None


def _internal_error() -> str:
    """Log the current exception with a reference id; the user-facing line names the reference and the log."""
    import traceback
    import uuid

    from bot.logs import redact
    from engine.errors import HeadroomError

    reference = uuid.uuid4().hex[:12]
    where = _error_log()
    try:
        with where.open("a", encoding="utf-8") as log_file:
            log_file.write(f"--- reference {reference}\n{redact(traceback.format_exc())}\n")
        log = str(where)
    except OSError:
        import logging  # only here: a plan that works never loads logging

        logging.getLogger("headroom.cli").exception("reference %s", reference)
        log = "stderr"
    return _views().error_line(HeadroomError("internal", reference=reference, log=log))


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


def run_feedback(args: argparse.Namespace) -> int:
    """`headroom feedback export` (issue 15): bot/feedback_export.py; imports Redis only when asked."""
    from bot.feedback_export import run_feedback as export

    return export(args, _views())
def run_catalog(args: argparse.Namespace) -> int:
    """`headroom catalog refresh` (regions, issue 12): bot/catalog_refresh.py; imports boto3 only when asked."""
    from bot.catalog_refresh import run_refresh

    return run_refresh(args, _views(), _catalog())


#: one answer and exit: reference counting frees what they allocate; the collector's passes only cost time (issue 14)
_ONE_SHOT = frozenset({"plan", "diagnose"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
    commands = {"plan": run_plan, "chat": run_chat, "serve": run_serve, "diagnose": run_diagnose,
                "feedback": run_feedback, "catalog": run_catalog}  # fmt: skip
    collecting = gc.isenabled()
    if args.command in _ONE_SHOT:
        gc.disable()
    try:
        return commands[args.command](args)
    except BrokenPipeError:  # `headroom plan ... | head`: the reader left; nothing went wrong here
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
        return EXIT_OK
    except Exception:  # noqa: BLE001 - the CLI's error boundary: a message with a reference, exit 1
        print(_internal_error(), file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if collecting:  # a caller in the same process (the tests) keeps its collector
            gc.enable()


def run() -> None:
    """The `headroom` console script: `main`, then exit without the final collection (issue 14: at exit CPython
    collects every object still tracked, ~7 ms that free nothing; callers of `main` keep their collector)."""
    try:
        sys.exit(main())
    finally:  # argparse's usage errors exit from inside main
        gc.freeze()


if __name__ == "__main__":
    run()

"""One conversation turn, for every surface: text + what the conversation remembers -> the next turn.

`headroom plan`, `headroom chat` and every Slack surface go through here; the adapters only
read input, call these functions, render the result with the templates, and store or post it.

    intent = understand(text, memory, catalog)        # parse, or apply a follow-up
    turn = answer(intent.request, memory, catalog)    # plan, and what changed since the last answer

`respond` does both. Nothing here words anything: a Turn carries a Plan (numbers and codes),
the changes as Notes, or a HeadroomError with its code. Unexpected exceptions are not caught:
each adapter's error boundary logs them and replies with a reference.
"""

import re
from typing import TYPE_CHECKING, Literal, NamedTuple

from engine.catalog.loader import Catalog
from engine.constraints import Invalid
from engine.errors import HeadroomError, InvalidRequest, ParseError
from engine.followup import merge
from engine.notes import Note, note
from engine.paste_screen import may_be_paste
from engine.plan import Plan
from engine.ranking import plan as make_plan
from engine.regions import place_region
from engine.request import Request

# imported where used: a flags-only `headroom plan` never reads words, a paste or a command, nor diffs answers
if TYPE_CHECKING:
    from engine.diagnose import Diagnosis
    from engine.paste_reader import PasteReading
    from engine.serve_command import ServeCommand

#: messages that ask how to use headroom rather than ask a question
HELP_WORDS = frozenset({"", "help", "?", "hi", "hello", "hey", "usage"})


class Memory(NamedTuple):
    """What a conversation remembers between turns: the last request and the instance its answer recommended."""

    request: Request | None = None
    top: str | None = None
    paste: "PasteReading | None" = None  # the pasted log this conversation is about ("it's 2x L40S" re-diagnoses)


class Intent(NamedTuple):
    """What a message asks for: a request to plan, help, a fresh start, or an error to explain."""

    kind: Literal["ask", "help", "reset", "error", "chatter", "diagnose"]  # chatter: not for headroom, stay quiet
    request: Request | None = None
    paste: "PasteReading | None" = None  # a pasted vLLM log or traceback, read
    overrides: dict[str, object] | None = None  # what a follow-up adds to a paste (the GPU, the model)
    hints: dict[str, object] | None = None  # what a paste's own prose names, where its log is silent
    error: HeadroomError | None = None
    unread: tuple[str, ...] = ()  # words that changed nothing: every answer says them back
    remarks: tuple[Note, ...] = ()  # what a pasted command held that the plan does not use


class Turn(NamedTuple):
    """The result of one turn. `memory` is what to remember now (None: keep what the conversation had)."""

    kind: Literal["answer", "help", "reset", "error", "chatter", "diagnosis"]
    memory: Memory | None = None
    request: Request | None = None
    plan: Plan | None = None
    changes: list[Note] | None = None  # set when the turn follows up on an earlier answer
    error: HeadroomError | None = None
    unread: tuple[str, ...] = ()
    remarks: tuple[Note, ...] = ()
    diagnosis: "Diagnosis | None" = None


def _user_error(exc: HeadroomError | Invalid) -> HeadroomError:
    if isinstance(exc, Invalid):
        return InvalidRequest("invalid_values", problems=exc.problems)
    return exc


def understand(
    text: str,
    memory: Memory | None,
    catalog: Catalog,
    overrides: dict[str, object] | None = None,
    addressed: bool = True,
) -> Intent:
    """Parse a new question or apply a follow-up; `overrides` (command-line flags) add to the words.

    `addressed=False` is a message in a conversation that was not said to headroom (thread
    chatter: "thanks!", "lol", a question to a colleague): it is read like any follow-up, but
    when it changes nothing it is "chatter" -- the adapter stays quiet instead of complaining.
    """
    if not overrides and text.strip().lower() in HELP_WORDS:
        return Intent("help") if addressed else Intent("chatter")
    if text.strip() and may_be_paste(text):
        from engine.paste_reader import looks_like_paste, read_paste

        if looks_like_paste(text):
            return Intent("diagnose", paste=read_paste(text), hints=paste_hints(text, catalog))
    if memory is not None and memory.paste is not None and not overrides:
        added = _paste_follow_up(text, catalog)
        if added:
            return Intent("diagnose", paste=memory.paste, overrides=_carried(memory, added))
    try:
        command = _command(text)
        if command is not None:
            flags = overrides or {}
            for key in command.fields.keys() & flags.keys():
                if command.fields[key] != flags[key]:  # `--max-model-len 8192` pasted, --context 32k given
                    raise ParseError("conflicting_values", field=key, first=command.fields[key], second=flags[key])
            request, unread = _next_request(command.prose, None, catalog, {**command.fields, **flags})
            return Intent("ask", request, unread=unread, remarks=_remarks(command, catalog))
        request, unread = _next_request(text, memory, catalog, overrides or {})
    except (HeadroomError, Invalid) as exc:
        error = _user_error(exc)
        if not addressed and error.code == "nothing_to_change":
            return Intent("chatter")
        return Intent("error", error=error)
    return Intent("reset") if request is None else Intent("ask", request, unread=unread)


#: what a follow-up to a diagnosis may add: the hardware and the settings the paste left out
_PASTE_FIELDS = frozenset(
    {"model", "instance", "nodes", "gpu", "gpus", "weights", "kv_dtype", "context_tokens", "gpu_memory_utilization", "tp"}
)


_LOG_LINE = re.compile(r"^\s*(?:\(|\[|INFO|WARNING|WARN|ERROR|DEBUG|CRITICAL|Traceback|File \"|\w+(?:Error|Exception)\b|\d)")
_PROSE_CHARS = 500
_PROSE_LINES = 30


def paste_hints(text: str, catalog: Catalog) -> dict[str, object]:
    """The model and hardware the words around a log name ("GPU: L40S", "on a g5.8xlarge"): log lines skipped."""
    lines = [line for line in text.splitlines()[:400] if line.strip() and not _LOG_LINE.match(line)]
    hints: dict[str, object] = {}
    for line in lines[:_PROSE_LINES]:  # line by line: one line the parser refuses does not hide the others
        from engine.parse import parse_message

        try:
            found = parse_message(line[:_PROSE_CHARS], catalog).found
        except HeadroomError:
            continue
        for key in ("model", "instance", "gpu", "gpus"):
            if found.get(key):
                hints.setdefault(key, found[key])
    return hints


def _paste_follow_up(text: str, catalog: Catalog) -> dict[str, object]:
    """The fields a message adds to the paste it follows ("it's a g6e.12xlarge", "2x L40S"); {} if none."""
    from engine.parse import parse_followup

    try:
        delta = parse_followup(text, catalog)
    except HeadroomError:
        return {}
    return {k: v for k, v in delta.changes.items() if k in _PASTE_FIELDS and v not in (None, ())}


_HARDWARE = ("instance", "nodes", "gpu", "gpus")


def _carried(memory: Memory, added: dict[str, object]) -> dict[str, object]:
    """What the last diagnosis settled (the model, the GPUs), with the follow-up's changes on top;
    new hardware replaces the old."""
    base = {k: v for k, v in (memory.request.as_data() if memory.request else {}).items() if k in _PASTE_FIELDS}
    if any(k in added for k in _HARDWARE):
        base = {k: v for k, v in base.items() if k not in _HARDWARE}
    return {k: v for k, v in {**base, **added}.items() if v is not None}


def _command(text: str) -> "ServeCommand | None":
    """A `vllm serve` command in the message, read; the words around it are kept to read as usual."""
    if "vllm" not in text:  # both forms serve_command.COMMAND reads name vllm: most messages skip that module
        return None
    from engine.serve_command import read_command, split_command

    parts = split_command(text)
    if parts is None:
        return None
    command = read_command(parts[0])
    command.prose = " ".join([parts[1], *command.words])
    return command


#: --quantization methods that need a checkpoint stored that way (vLLM cannot quantize to them while loading)
_STORED_ONLY = frozenset({"awq", "awq_marlin", "gptq", "gptq_marlin", "modelopt_fp4", "mxfp4"})


def _remarks(command: "ServeCommand", catalog: Catalog) -> tuple[Note, ...]:
    found = []
    method, model = command.quantization, str(command.fields.get("model") or "")
    if method in _STORED_ONLY and model:
        from engine.catalog.resolve import resolve_model

        try:
            stored = resolve_model(catalog, model)
        except HeadroomError:
            stored = None
        if stored is not None and stored.implied_weights is None and stored.spec.dtype in {"bf16", "fp16", "fp32"}:
            # vLLM refuses this as written: the plan's command names a checkpoint in that format instead
            found.append(note("command_needs_stored_format", method=method, model=model))
    if command.not_modelled:
        found.append(note("command_not_modelled", flags=command.not_modelled))
    if command.ignored:
        found.append(note("command_ignored", flags=command.ignored))
    if command.unknown:
        found.append(note("command_unknown_flags", flags=command.unknown))
    return tuple(found)


def _next_request(
    text: str, memory: Memory | None, catalog: Catalog, overrides: dict[str, object]
) -> tuple[Request | None, tuple[str, ...]]:
    """The request this message makes (None for 'start over' without a new question) and the words unread."""
    previous = memory.request if memory else None
    if not text.strip() and overrides:
        return _flags_only(overrides, catalog), ()
    from engine.parse import parse_followup, parse_message, request_from

    if previous is not None and not overrides:
        delta = parse_followup(text, catalog)
        if not delta.reset:
            return merge(previous, delta, memory.top if memory else None), delta.unread
        return (Request.from_data(delta.changes) if "model" in delta.changes else None), delta.unread
    reading = parse_message(text, catalog)
    if reading.reset and "model" not in reading.found and not overrides:
        return None, ()
    return request_from(reading, catalog, overrides), tuple(reading.unknown)


def _flags_only(flags: dict[str, object], catalog: Catalog) -> Request:
    """What ``parse.request_from`` makes of no words and these flags, without loading the request language."""
    if "model" not in flags:
        raise ParseError("no_model_given")
    region = {"region": place_region(catalog, str(flags["region"]))} if "region" in flags else {}
    return Request.from_data({**flags, "model_note": None, **region})


def answer(
    request: Request,
    memory: Memory | None,
    catalog: Catalog,
    unread: tuple[str, ...] = (),
    remarks: tuple[Note, ...] = (),
) -> Turn:
    """Plan a request; when it follows an earlier one in the conversation, say what changed."""
    try:
        plan = make_plan(request, catalog)
    except (HeadroomError, Invalid) as exc:
        return Turn("error", error=_user_error(exc))
    previous = memory.request if memory else None
    moved: list[Note] | None = None
    if previous == request:
        moved = []  # a follow-up that changed nothing
    elif previous is not None:
        from engine.changes import changes

        try:
            moved = changes(make_plan(previous, catalog), plan)
        except HeadroomError:
            moved = None  # the earlier request no longer plans (e.g. data changed): answer without the diff
    top = plan.top.instance if plan.top else None
    return Turn("answer", Memory(request, top), request, plan, moved, unread=unread, remarks=remarks)


def diagnosis(
    reading: "PasteReading",
    catalog: Catalog,
    overrides: dict[str, object] | None = None,
    hints: dict[str, object] | None = None,
) -> Turn:
    """Diagnose a paste; the thread remembers its settings (when known) for follow-ups."""
    from engine.diagnose import diagnose

    found = diagnose(reading, catalog, overrides, hints)
    top = found.plan.top.instance if found.plan and found.plan.top else None
    memory = Memory(found.request, top, reading)
    return Turn("diagnosis", memory, found.request, found.plan, diagnosis=found)


def respond(
    text: str,
    memory: Memory | None,
    catalog: Catalog,
    overrides: dict[str, object] | None = None,
    addressed: bool = True,
) -> Turn:
    """A whole turn: understand the message, then answer it."""
    intent = understand(text, memory, catalog, overrides, addressed)
    if intent.kind == "ask":
        assert intent.request is not None
        return answer(intent.request, memory, catalog, intent.unread, intent.remarks)
    if intent.kind == "diagnose":
        assert intent.paste is not None
        return diagnosis(intent.paste, catalog, {**(intent.overrides or {}), **(overrides or {})}, intent.hints)
    if intent.kind == "reset":
        return Turn("reset", Memory(), error=ParseError("start_over"))
    return Turn(intent.kind, error=intent.error)

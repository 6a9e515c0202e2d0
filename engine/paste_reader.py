"""Read what people paste -- vLLM start-up logs, tracebacks, `vllm serve` lines -- into facts, never into advice.

In a team's Slack the question usually arrives as a paste of a start-up that died. This module only reads it:
what failed (`kind`), where (`phase`, for a CUDA OOM), every figure vLLM printed (`numbers`, stable keys), the
command, the GPU. The diagnosis is built on top. The wordings it knows live in engine/paste_patterns.py.

Precedence: people paste whole histories, so signals are read in paste order and the LAST failure wins. A
start-up that got past vLLM's memory checks afterwards ("Maximum concurrency ... >= 1x", "init engine ...
took", the API server starting) makes the paste `healthy_startup`; mere progress (weights loaded, a positive KV
pool) does not override a failure, as that run may still fail, but with no failure it is healthy. NCCL / P2P
set-up lines ("Custom allreduce is disabled", "Found nccl") are `nccl_or_p2p` only when the paste stops there
(the hang people ask about); an exception nothing here explains, after the last progress, is `unrecognised`.

Kept strings are redacted (paste_patterns.keep). A paste over 300 kB is read as its first 60 kB (command,
versions, GPU) and last 240 kB (the failure); every pattern is linear, so 1 MB reads in well under 200 ms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine import paste_patterns as p
from engine.errors import HeadroomError
from engine.paste_patterns import keep, strip_prefix

HEAD, TAIL = 60_000, 240_000  # characters read from a long paste's start and end
_WINDOW = 4  # lines a failure message may be wrapped over
_LOOKBACK = 65_536  # characters searched before an OOM for its traceback and the progress lines
_SAMPLE = 65_536  # characters from each end searched by the line-anchored patterns (GPU lists, "Model:" lines)
Event = tuple[int, str]  # (position in the paste, outcome)


@dataclass(frozen=True)
class PasteReading:
    """What a paste says; `numbers` keys are listed in the tables of engine/paste_patterns.py."""

    kind: str  # one of paste_patterns.KINDS
    phase: str | None = None  # cuda_oom only: loading | profiling | cuda_graphs | sampler_warmup | unknown
    vllm_version: str | None = None
    model: str | None = None
    command: dict[str, object] | None = None  # serve_command's fields + "not_modelled"; None: none or unreadable
    gpu_name: str | None = None
    gpu_count: int | None = None
    gpu_total_gib: float | None = None
    numbers: dict[str, float | int] = field(default_factory=dict)
    custom_allreduce_disabled_reason: str | None = None
    unsupported_reason: str | None = None  # vLLM's sentence, for unsupported_on_gpu / _model / fp8_block_split
    architecture: str | None = None  # the architecture(s) vLLM rejected
    broken_install: bool = False  # unsupported_model, but the architecture exists: its class failed to import
    failures: tuple[str, ...] = ()  # the failure kinds in paste order (a history holds several)
    errors: tuple[str, ...] = ()  # the last six key error lines, redacted, at most 300 characters each


def looks_like_paste(text: str) -> bool:
    """Whether a message is (or holds) a vLLM log, traceback or error; a bare `vllm serve` line is not."""
    sample = text if len(text) <= 2 * HEAD else text[:HEAD] + "\n" + text[-HEAD:]
    return any(pattern.search(sample) for pattern in p.LOG_SHAPE) or any(s.search(sample) for s, _ in p.SIGNALS)


def read_paste(text: str) -> PasteReading:
    """The facts in a paste; kind "unrecognised" when it names nothing this reader knows."""
    scan = _normalise(text if len(text) <= HEAD + TAIL else text[:HEAD] + "\n" + text[-TAIL:])
    events = _events(scan)
    kind, decisive = _decide(events)
    numbers = _figures(scan)
    if decisive:
        _read_message(_window(scan, decisive[0]), numbers)
    command = _command(scan)
    _fill_from_command(numbers, command)
    lines_sample = scan if len(scan) <= 2 * _SAMPLE else scan[:_SAMPLE] + "\n" + scan[-_SAMPLE:]
    name, count, total = _gpu(lines_sample, numbers)
    reason, architecture, broken = _unsupported(scan, kind, decisive)
    failures = [outcome for _, outcome in events if outcome in p.FAILURES]
    allreduce = _last(p.CUSTOM_ALLREDUCE, scan)
    command_model = str(command["model"]) if command and command.get("model") else None
    allreduce_reason = keep(allreduce.group(1).partition(". To silence")[0].rstrip(".")) if allreduce else None
    return PasteReading(
        kind=kind,
        phase=_phase(scan, decisive, events) if kind == p.OOM and decisive else None,
        vllm_version=_first(p.VERSIONS, scan),
        model=_first(p.MODELS[:2], scan) or command_model or _first(p.MODELS[2:], lines_sample),
        command=command,
        gpu_name=name,
        gpu_count=count,
        gpu_total_gib=total,
        numbers=numbers,
        custom_allreduce_disabled_reason=allreduce_reason,
        unsupported_reason=reason,
        architecture=architecture,
        broken_install=broken,
        failures=tuple(k for i, k in enumerate(failures) if i == 0 or failures[i - 1] != k),
        errors=_errors(scan, events),
    )


# --- which failure -----------------------------------------------------------------------------


def _normalise(text: str) -> str:
    """Line ends, Slack's HTML entities and the `<br/>` tags pasted logs carry, as plain text."""
    for old, new in (("\r\n", "\n"), ("\r", "\n"), ("\u00a0", " "), ("<br/>", ""), ("<br>", ""), ("&lt;", "<"),
                     ("&gt;", ">"), ("&amp;", "&")):  # fmt: skip
        text = text.replace(old, new)
    return text


def _outcome(outcome: str, m: re.Match[str]) -> str:
    if outcome != p.CONCURRENCY:
        return outcome
    value = float(m.group(2))
    return p.NO_BLOCKS if value == 0 else p.KV_TOO_SMALL if value < 1 else p.READY


def _events(scan: str) -> list[Event]:
    """Every signal in paste order, less exceptions on INFO / WARNING lines (handled, start-up went on)."""
    events, line_end, quiet = [], -1, False
    for pos, outcome in sorted((m.start(), _outcome(o, m)) for pattern, o in p.SIGNALS for m in pattern.finditer(scan)):
        if outcome == p.GENERIC and pos > line_end:
            line_start, line_end = _line_bounds(scan, pos)
            quiet = bool(p.QUIET_LEVEL.search(scan, line_start, min(pos, line_start + 200)))
        if outcome != p.GENERIC or not quiet:
            events.append((pos, outcome))
    return events


def _decide(events: list[Event]) -> tuple[str, Event | None]:
    """The paste's kind by the precedence in the module docstring, and the failure event that decided it."""
    state, decisive = None, None
    for event in events:
        outcome = event[1]
        if outcome in p.FAILURES:
            state, decisive = outcome, event
        elif outcome == p.READY:
            state, decisive = p.HEALTHY, None
        elif state not in p.FAILURES:  # only a start-up past the memory checks overrides a failure
            state = {p.PROGRESS: p.HEALTHY, p.SETUP: p.SETUP, p.GENERIC: p.UNRECOGNISED}[outcome]
    return (p.NCCL if state == p.SETUP else state or p.UNRECOGNISED), decisive


# --- figures -----------------------------------------------------------------------------------


def _number(key: str, raw: str, scale: float = 1.0) -> float | int:
    value = float(raw.replace(",", "")) * scale
    return int(value) if key in p.INTEGER_KEYS else round(value, 4)


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = None
    for found in pattern.finditer(text):  # noqa: B007 -- the last match is the one wanted
        pass
    return found


def _figures(scan: str) -> dict[str, float | int]:
    """Every figure vLLM printed, the last print of each (the run that failed is the last one pasted)."""
    numbers: dict[str, float | int] = {}
    for pattern, keys in p.FIGURES:
        m = _last(pattern, scan)
        if m:
            numbers.update({key: _number(key, m.group(i + 1)) for i, key in enumerate(keys) if m.group(i + 1)})
    return numbers


def _line_bounds(scan: str, pos: int) -> tuple[int, int]:
    end = scan.find("\n", pos)
    return scan.rfind("\n", 0, pos) + 1, len(scan) if end < 0 else end


def _lines_from(scan: str, pos: int, count: int, limit: int = 8_000) -> list[str]:
    """The line holding `pos` and the next ones, without their log prefixes (a wrapped message's lines)."""
    start = _line_bounds(scan, pos)[0]
    return [strip_prefix(line) for line in scan[start : start + limit].split("\n", count)[:count]]


def _window(scan: str, pos: int) -> str:
    """A failure message with its wrapped lines joined and all whitespace removed."""
    return "".join("".join(_lines_from(scan, pos, _WINDOW)).split())


def _read_message(window: str, numbers: dict[str, float | int]) -> None:
    """The figures in the decisive failure message: they outrank the same figures printed elsewhere."""
    for pattern, keys in p.SQUASHED:
        m = pattern.search(window)
        for i, key in enumerate(keys):
            if m and key.endswith("_x10"):  # "Minimum capability: 75" is 7.5
                numbers[key[:-4]] = round(int(m.group(i + 1)) / 10, 1)
            elif m:
                numbers[key] = _number(key, m.group(i + 1))
    for pattern, keys, with_units in p.OOM_FIGURES:
        m = pattern.search(window)
        step = 2 if with_units else 1
        for i, key in enumerate(keys):
            if m:
                scale = p.UNITS[m.group(i * step + 2)] if with_units else 1.0
                numbers[key] = _number(key, m.group(i * step + 1), scale)


def _phase(scan: str, decisive: Event, events: list[Event]) -> str:
    """Where start-up was when memory ran out: the message, its traceback's frames, else the last progress line."""
    i = events.index(decisive) - 1
    while i >= 0 and (events[i][1] in p.FAILURES or events[i][1] == p.GENERIC):
        i -= 1  # the same crash: its traceback, other ranks' copies
    while i >= 0 and events[i][1] not in p.FAILURES:
        i -= 1  # this run's progress, back to an earlier run's failure
    pos = decisive[0]
    low = max(events[i][0] if i >= 0 else 0, pos - _LOOKBACK)
    traceback = _last(p.TRACEBACK, scan[low:pos])
    region = scan[low + traceback.start() if traceback else max(low, pos - 8_000) : pos]
    region += " ".join(_lines_from(scan, pos, _WINDOW))
    for phase, pattern in p.PHASE_FRAMES:
        if pattern.search(region):
            return phase
    markers = [(m.start(), phase) for phase, pattern in p.PHASE_MARKERS if (m := _last(pattern, scan[low:pos]))]
    return (max(markers, key=lambda marker: marker[0])[1] if markers else None) or "unknown"


# --- strings -----------------------------------------------------------------------------------


def _first(patterns: tuple[re.Pattern[str], ...], scan: str) -> str | None:
    """Group 1 of the last match of the first pattern that matches, kept safe."""
    for pattern in patterns:
        m = _last(pattern, scan)
        if m:
            return keep(m.group(1))
    return None


def _errors(scan: str, events: list[Event]) -> tuple[str, ...]:
    """The last six distinct lines that carry a failure or an exception, hard-wrapped lines joined."""
    starts: list[int] = []
    line_end = -1
    for pos, outcome in events:
        if (outcome in p.FAILURES or outcome == p.GENERIC) and pos > line_end:
            start, line_end = _line_bounds(scan, pos)
            starts.append(start)
    kept: list[str] = []
    later = set(starts[-61:])
    for start in reversed(starts[-60:]):  # ranks repeat a line: look a little further back, not forever
        lines = _lines_from(scan, start, _WINDOW, limit=4 * p.TRIM * _WINDOW)
        text, offset = lines[0].strip(), start
        for more in lines[1:]:  # a message wrapped by the reporter: long lines that stop mid-sentence
            offset = scan.find("\n", offset) + 1
            if len(text) < 60 or p.TERMINAL.search(text) or more.strip() in ("", "[...]") or offset in later:
                break
            text += " " + more.strip()
        clean = keep(text)
        if clean and not clean.startswith("Traceback") and clean not in kept:
            kept.append(clean)
        if len(kept) == 6:
            break
    return tuple(reversed(kept))


def _unsupported(scan: str, kind: str, decisive: Event | None) -> tuple[str | None, str | None, bool]:
    """(vLLM's sentence, the rejected architecture, whether the install is broken) for the unsupported kinds."""
    if decisive is None or kind not in (p.GPU, p.MODEL, p.FP8_BLOCK):
        return None, None, False
    line = _lines_from(scan, decisive[0], 1)[0]
    if kind == p.FP8_BLOCK and not line.rstrip().endswith("."):  # "... is not divisible by" / "weight ... = 128."
        line = " ".join([line.rstrip(), *_lines_from(scan, decisive[0], 2)[1:]])
    lead = p.MESSAGE_LEAD.match(line)
    sentence = (line[lead.end() :] if lead else line).split('"', 1)[0]  # a quoted message ends at its quote
    if "('" in sentence and "', '" in sentence:  # compressed-tensors prints a tuple of fragments
        sentence = "".join(p.QUOTED.findall(sentence[sentence.index("('") :]))
    reason = keep(sentence.strip(" `"))
    if kind in (p.GPU, p.FP8_BLOCK):
        return reason, None, False
    text = "".join(_lines_from(scan, decisive[0], 12, limit=30_000))  # the list may be hard-wrapped mid-name
    found = p.ARCHITECTURES.search(text)
    rejected = [n for n in p.QUOTED.findall(found.group(1) or "") + [found.group(2) or ""] if n] if found else []
    supported = set(p.QUOTED.findall(text.partition("Supported architectures:")[2].partition("]")[0]))
    broken = "inspect" in text[:2_000] or any(name in supported for name in rejected)
    return reason, keep(", ".join(rejected)), broken


# --- the command and the GPU -------------------------------------------------------------------


def _command(scan: str) -> dict[str, object] | None:
    """The last readable `vllm serve` / api_server line, else a compose file's flags from --model on."""
    found = sorted((m.start() for pattern in p.COMMANDS for m in pattern.finditer(scan)), reverse=True)[:5]
    lines = [p.CONTINUATION.sub(" ", scan[at : at + 4_000]).split("\n", 1)[0].split("`", 1)[0] for at in found]
    starts = (f.start() for f in p.FLAG_BLOCK.finditer(scan))
    block = None if found else next((at for at in starts if _first_on_line(scan, at)), None)
    if block is not None:  # one flag a line
        flags = scan[block : block + 4_000].split("\n")[:40]
        lines = [" ".join(f.strip() for f in flags if f.lstrip().startswith("--"))]
    from engine.serve_command import read_command  # only a paste's command needs the command reader

    for line in lines:
        line = " " + p.redact(_substitute(scan, line))
        line = p.UNDERSCORE_FLAG.sub(lambda f: "--" + f.group(1).replace("_", "-"), line)  # --tensor_parallel_size
        if not line.lstrip().startswith(("vllm", "--")) and "--model" not in line:
            continue  # `python ... api_server.py` without --model: its first word is no model
        try:
            read = read_command(line)
        except (HeadroomError, ValueError, OverflowError):
            continue
        if p.MODEL_LIKE.search(str(read.fields["model"])):  # not "vllm serve with the flags above"
            fields: dict[str, object] = {k: keep(v) if isinstance(v, str) else v for k, v in read.fields.items()}
            return fields | {"not_modelled": [flag for flag in map(keep, read.not_modelled) if flag]}
    return None


def _first_on_line(scan: str, at: int) -> bool:
    """Whether only indentation (40 characters at most) comes before `at` on its line."""
    before = scan[max(0, at - 41) : at]
    return not before.rpartition("\n")[2].strip() and ("\n" in before or at <= 40)


def _substitute(scan: str, line: str) -> str:
    """`${VLLM_ARGS}` replaced by its `VLLM_ARGS=...` line in the paste (one level, three variables)."""
    for var in p.SHELL_VAR.findall(line)[:3]:
        assigned = re.compile(r"(?m)^[ \t]{0,8}(?:export[ \t]+)?" + var + r"=([^\n]{0,2000})$").search(scan)
        if assigned:
            value = assigned.group(1).strip().strip("\"'")
            line = line.replace("${" + var + "}", value).replace("$" + var, value)
    return line


def _fill_from_command(numbers: dict[str, float | int], command: dict[str, object] | None) -> None:
    """Settings the log did not print, from the command; the max length last from the concurrency line."""
    for key in ("tp", "pp", "gpu_memory_utilization", "context_tokens"):
        name, value = ("max_model_len" if key == "context_tokens" else key), (command or {}).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and name not in numbers:
            numbers[name] = value
    if "max_model_len" not in numbers and "max_concurrency_tokens" in numbers:
        numbers["max_model_len"] = numbers["max_concurrency_tokens"]


def _gpu(scan: str, numbers: dict[str, float | int]) -> tuple[str | None, int | None, float | None]:
    """(name, count, total GiB): vLLM's messages, nvidia-smi / collect_env lists, a "GPU: ..." line, config names."""
    listed: dict[str, str] = {}
    for m in p.GPU_LISTED.finditer(scan):
        listed.setdefault(m.group(1), " ".join(m.group(2).split()))
    names = list(dict.fromkeys(listed.values()))
    name = _first(p.GPU_IN_MESSAGES, scan) or (" + ".join(names) if names else None)
    count = len(listed) or None
    for said in p.GPU_SAID.finditer(scan) if name is None else ():
        value = said.group(1).strip(" *`")
        if p.GPU_WORDS.search(value):
            many = p.GPU_COUNT_NAME.match(value)
            name, count = (many.group(2), int(many.group(1))) if many else (value, count)
    config = _last(p.GPU_CONFIG_FILE, scan) if name is None else None
    name = config.group(1).replace("_", " ") if config else name
    smi = _last(p.SMI_MEMORY, scan)
    total = next((float(numbers[k]) for k in ("oom_total_gib", "total_gpu_memory_gib") if k in numbers), None)
    return keep(name), count, total or (round(int(smi.group(1)) / 1024, 2) if smi else None)

"""Every word a user sees, rendered from the Jinja templates in templates/ (one environment per process).

The engine returns numbers and codes (Plans, Notes, errors); ``Views`` turns them into the
terminal's text, Slack's mrkdwn pieces and the JSON's "text" fields, from the same templates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, StrictUndefined

from engine.errors import HeadroomError, ParseError
from engine.notes import Note, as_json
from engine.plan import Candidate, Plan, plan_json

if TYPE_CHECKING:  # a plan never needs the diagnosis module loaded
    from engine.diagnose import Diagnosis


def _gib(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _money(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"${value:,.{digits}f}"


def _count(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 10 else f"{value:,.1f}"


def short_gpu(name: str) -> str:
    """'NVIDIA RTX PRO 6000 Blackwell Server Edition' -> 'RTX PRO 6000 Blackwell'."""
    for noise in ("NVIDIA ", " Server Edition", " SXM4", " SXM2", " SXM"):
        name = name.replace(noise, "")
    return name


def _hardware(c: Candidate) -> str:
    per_node = c.gpu_count // c.nodes
    gpus = f"{per_node} × {short_gpu(c.gpu)} ({c.gpu_memory_aws_gib:.0f} GiB)"
    return gpus if c.nodes == 1 else f"{c.nodes} nodes of {gpus}"


def _layout(c: Candidate) -> str:
    parts = [f"TP{c.tp}"]
    if c.pp > 1:
        parts.append(f"PP{c.pp}")
    if c.replicas > 1:
        parts.append(f"×{c.replicas}")
    return " ".join(parts)


def _label(c: Candidate) -> str:
    return c.instance or f"{c.gpu_count} × {short_gpu(c.gpu)}"


def _missing(code: str) -> str:
    raise KeyError(f"no wording for code {code!r} in templates/")


def build_environment(bytecode_dir: Path | None = None) -> Environment:
    """One Jinja environment; with `bytecode_dir`, compiled templates are kept there between processes."""
    cache = None
    if bytecode_dir is not None:
        try:
            bytecode_dir.mkdir(parents=True, exist_ok=True)
            cache = FileSystemBytecodeCache(str(bytecode_dir))
        except OSError:
            cache = None  # a read-only home: compile in memory, as without a folder
    env = Environment(
        loader=PackageLoader("templates", "."),
        bytecode_cache=cache,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        auto_reload=False,  # templates are package files: no stat of notes.j2 for each of a plan's ~150 notes
    )
    env.globals["missing"] = _missing
    env.filters.update(
        gib=_gib, money=_money, count=_count, hardware=_hardware, layout=_layout, label=_label, short_gpu=short_gpu
    )
    env.filters["say"] = lambda n: str(env.get_template("notes.j2").module.say(n))  # type: ignore[attr-defined]
    return env


def shown_candidates(plan: Plan, limit: int = 8) -> tuple[list[Candidate], list[Candidate]]:
    """The feasible picks worth showing (one per distinct GPU layout) and the notable rejections."""
    picks: list[Candidate] = []
    seen: set[tuple] = set()
    for c in plan.candidates:
        if not c.feasible or not c.meets_targets:
            continue
        key = (c.gpu_id, c.gpu_count, c.nodes)
        if key in seen:
            continue  # a larger size of the same GPU layout only adds vCPUs / RAM
        seen.add(key)
        picks.append(c)
        if len(picks) == limit:
            break
    rejected: list[Candidate] = []
    seen = set()
    for c in plan.candidates:
        key = (c.gpu_id, c.gpu_count, c.nodes)
        if c.feasible or key in seen:
            continue
        seen.add(key)
        rejected.append(c)
    # most instructive first: KV-limited, then too small, then unsupported hardware
    rejected.sort(
        key=lambda c: (c.verdict != "no_kv_room", c.kv_cache_gib_per_gpu > 0, -(c.gpu_memory_gib * c.gpu_count))
    )
    return picks, rejected[:3]


def _plain(text: str) -> str:
    return text


class Views:
    """The templates of one environment, and the few ways adapters ask for words."""

    def __init__(self, env: Environment | None = None) -> None:
        self.env = env or build_environment()

    def macros(self, template: str) -> Any:
        return self.env.get_template(template).module

    def say(self, n: Note) -> str:
        return str(self.macros("notes.j2").say(n))

    def error(self, exc: HeadroomError) -> str:
        return str(self.macros("errors.j2").explain(exc))

    def understood(self, exc: HeadroomError) -> dict[str, object]:
        return dict(exc.understood) if isinstance(exc, ParseError) else {}

    def error_line(self, exc: HeadroomError) -> str:
        """`headroom: message (understood: ...)` and the suggestions, for the terminal."""
        return str(self.macros("chat.j2").error_line(self.error(exc), self.understood(exc), exc.suggestions))

    def explanation(self, plan: Plan, bold: Callable[[str], str] = _plain, code: Callable[[str], str] = _plain) -> str:
        """The senior engineer's paragraphs; `bold` / `code` wrap emphasis for the target surface."""
        _, rejected = shown_candidates(plan)
        text = self.env.get_template("explanation.j2").render(
            plan=plan, top=plan.top, rejected=rejected, b=bold, c=code
        )
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

    def terminal(
        self, plan: Plan, limit: int = 8, unread: tuple[str, ...] = (), show_all: bool = False,
        remarks: tuple[Note, ...] = (),
    ) -> str:  # fmt: skip
        picks, _ = shown_candidates(plan, limit)
        return self.env.get_template("plan.txt.j2").render(
            plan=plan, picks=picks, unread=unread, show_all=show_all, remarks=remarks,
            explanation=self.explanation(plan, code=lambda s: f"\n  $ {s}"),
        )  # fmt: skip

    def changes(self, notes: list[Note]) -> str:
        return self.env.get_template("changes.txt.j2").render(changes=notes)

    def plan_json(self, plan: Plan) -> dict[str, Any]:
        return plan_json(plan, self.say)

    def diagnosis(self, d: Diagnosis, bold: Callable[[str], str] = _plain, code: Callable[[str], str] = _plain) -> str:
        text = str(self.macros("diagnosis.j2").diagnosis(d, bold, code))
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

    def diagnosis_json(self, d: Diagnosis) -> dict[str, Any]:
        """`headroom diagnose --json` (docs/diagnose-json.md)."""
        r, top = d.reading, d.candidate
        fixes = [
            {"change": {f.lever: f.value}, "vllm_command": f.command, "suffices": f.enough, "verdict": f.verdict,
             "requests": f.requests, "kv_tokens": f.kv_tokens, "instance": f.instance, "text": self.say(f)}
            for f in (d.plan.fixes if d.plan and not d.elsewhere else ())
        ]  # fmt: skip
        if d.elsewhere:
            e = d.elsewhere
            fixes.insert(0, {"change": {"instance": e.instance}, "vllm_command": e.vllm_command, "suffices": e.feasible,
                             "verdict": e.verdict, "requests": e.max_concurrency, "kv_tokens": e.kv_cache_tokens,
                             "instance": e.instance, "text": self.say(e.reasons[0])})  # fmt: skip
        return {
            "kind": r.kind,
            "summary": str(self.macros("diagnosis.j2").headline(d)),
            "read": {"phase": r.phase, "vllm_version": r.vllm_version, "model": r.model, "gpu": r.gpu_name,
                     "gpu_count": r.gpu_count, "numbers": r.numbers, "command": r.command, "errors": list(r.errors)},
            "predicted": self.plan_json(d.plan)["candidates"][0] if d.plan and top and not d.elsewhere else None,
            "compared": [self.note_json(n) for n in d.compared],
            "assumed": [self.note_json(n) for n in d.assumed],
            "missing": list(d.missing),
            "fixes": fixes,
        }  # fmt: skip

    def note_json(self, n: Note) -> dict[str, Any]:
        return {**as_json(n), "text": self.say(n)}

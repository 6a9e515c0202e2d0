"""Feedback on answers: the blocks under each answer, what their clicks carry back, and the stored record.

Every answer ends with 👍/👎 (Slack's `feedback_buttons` in a `context_actions` block) and a "Did it
fit?" button that opens a small form: what happened (fits / out of memory / did not start), how many
requests it held, or vLLM's start-up log. A click carries the engine's understood request and what the
answer suggested, never the user's words; it comes back from the user's client, so it is read as
untrusted text (size, depth, schema) before anything uses it. A pasted log is read by the engine's
paste reader and only its figures are kept.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.paste_reader import PasteReading
from engine.plan import Plan
from engine.request import Request

FEEDBACK_ACTION = "feedback"  # the 👍/👎 element's action_id
FIT_ACTION = "fit_report"  # the "Did it fit?" button
FIT_VIEW = "fit_report"  # the form's callback_id
MAX_VALUE = 2000  # a feedback or button value
MAX_METADATA = 3000  # a modal's private_metadata
MAX_DEPTH = 6
MAX_LOG = 3000  # a plain_text_input holds at most 3,000 characters
OUTCOMES = ("fits", "oom", "no_start")
VOTES = ("up", "down")


class Suggested(BaseModel):
    """What the answer recommended: its top pick's instance, GPUs and layout (blank when nothing fit)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance: str | None = Field(default=None, max_length=64)
    gpu: str | None = Field(default=None, max_length=64)
    gpus: int | None = Field(default=None, ge=0, le=4096)
    gpu_mem_gib: float | None = Field(default=None, ge=0, le=10_000)
    tp: int | None = Field(default=None, ge=0, le=4096)
    pp: int | None = Field(default=None, ge=0, le=4096)
    gpu_mem_util: float | None = Field(default=None, ge=0, le=1)
    max_requests: float | None = Field(default=None, ge=0, le=10_000_000)  # the KV cache's room, per replica
    vllm_version: str | None = Field(default=None, max_length=16)


class Answered(BaseModel):
    """What a feedback element carries: the request, the suggestion, and (for 👍/👎) which vote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    r: Request
    t: Suggested = Suggested()
    v: Literal["up", "down", ""] = ""


class LogFigures(BaseModel):
    """What vLLM printed at start-up, as the paste reader found it: numbers and names, no text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    vllm_version: str | None = None
    gpu: str | None = None
    gpu_count: int | None = None
    gpu_mem_gib: float | None = None
    numbers: dict[str, float] = {}

    @classmethod
    def of(cls, reading: PasteReading) -> LogFigures:
        numbers = {k: float(v) for k, v in reading.numbers.items() if isinstance(v, int | float)}
        return cls(kind=reading.kind, vllm_version=reading.vllm_version, gpu=reading.gpu_name,
                   gpu_count=reading.gpu_count, gpu_mem_gib=reading.gpu_total_gib, numbers=numbers)  # fmt: skip


class FeedbackRecord(BaseModel):
    """One stored response: the engine's request, what was suggested, the verdict, and which release answered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["thumbs", "outcome"]
    value: str = ""  # up | down | fits | oom | no_start | "" (only a number or a log was given)
    held: int | None = None  # requests it held at once
    request: dict[str, Any]
    suggested: Suggested = Suggested()
    log: LogFigures | None = None
    digest: str  # engine code, templates and catalog that answered
    at: str  # UTC, ISO 8601

    @classmethod
    def now(cls, **fields: Any) -> FeedbackRecord:
        return cls(at=datetime.now(UTC).isoformat(timespec="seconds"), **fields)


def suggested(plan: Plan | None) -> Suggested:
    if plan is None:
        return Suggested()
    top = plan.top
    settings = Suggested(gpu_mem_util=plan.request.gpu_memory_utilization, vllm_version=plan.request.vllm_version)
    if top is None:
        return settings
    return settings.model_copy(update={"instance": top.instance_type or top.instance, "gpu": top.gpu,
                                       "gpus": top.gpu_count, "gpu_mem_gib": round(top.gpu_memory_gib, 2),
                                       "tp": top.tp, "pp": top.pp, "max_requests": round(top.max_concurrency, 1)})  # fmt: skip


def carried(request: Request, plan: Plan | None, vote: str = "", limit: int = MAX_VALUE) -> str | None:
    """A feedback element's value; None when it would not fit (the element is then left out)."""
    data = {"r": request.as_data(exclude_defaults=True),
            "t": suggested(plan).model_dump(exclude_none=True), "v": vote}  # fmt: skip
    value = json.dumps(data, separators=(",", ":"))
    return value if len(value) <= limit else None


def read_carried(value: object, limit: int = MAX_VALUE) -> Answered | None:
    """What a click or a form carries back; None for anything headroom did not write."""
    from bot.http_guard import json_object  # the Slack side only: `headroom plan --blocks` never reads clicks

    data = json_object(value, limit, MAX_DEPTH)
    try:
        return Answered.model_validate(data) if data is not None else None
    except ValidationError:
        return None


def feedback_blocks(words: Any, request: Request, plan: Plan | None, fit: bool = True) -> list[dict]:
    """The "Did it fit?" button (`fit`: a plan's answer, not a log's diagnosis) and 👍/👎 under an answer
    (`words`: templates/assistant.j2)."""
    up, down = carried(request, plan, "up"), carried(request, plan, "down")
    fit_value = carried(request, plan) if fit else None
    blocks: list[dict] = []
    if fit_value:
        button = {"type": "button", "action_id": FIT_ACTION, "value": fit_value,
                  "text": {"type": "plain_text", "text": str(words.fit_button)}}  # fmt: skip
        blocks.append({"type": "actions", "elements": [button]})
    if up and down:
        thumbs = words.thumbs

        def vote(name: str, value: str) -> dict:
            return {"text": {"type": "plain_text", "text": thumbs[name]}, "value": value,
                    "accessibility_label": thumbs[name + "_label"]}  # fmt: skip

        element = {"type": "feedback_buttons", "action_id": FEEDBACK_ACTION,
                   "positive_button": vote("up", up), "negative_button": vote("down", down)}  # fmt: skip
        blocks.append({"type": "context_actions", "elements": [element]})
    return blocks


# --- the "Did it fit?" form ------------------------------------------------------------------


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def fit_form(words: Any, answered: Answered, name: str, metadata: str) -> dict:
    """The modal a "Did it fit?" click opens; `metadata` comes back with the submission."""
    form = words.fit_form
    options = [{"text": _plain(form[o]), "value": o} for o in OUTCOMES]
    from bot.blocks import escape  # bot.blocks imports this module: at call time

    # the model's name and the instance come back from Slack in the button's value: never mrkdwn or mentions
    intro = str(words.fit_intro(escape(name), answered.r, escape(answered.t.instance or "")))
    return {
        "type": "modal", "callback_id": FIT_VIEW, "private_metadata": metadata,
        "title": _plain(form["title"]), "submit": _plain(form["submit"]), "close": _plain(form["close"]),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": intro[:3000]}},
            {"type": "input", "block_id": "outcome", "optional": True, "label": _plain(form["outcome"]),
             "element": {"type": "radio_buttons", "action_id": "value", "options": options}},
            {"type": "input", "block_id": "held", "optional": True, "label": _plain(form["held"]),
             "hint": _plain(form["held_hint"]),
             "element": {"type": "number_input", "action_id": "value", "is_decimal_allowed": False,
                         "min_value": "1", "max_value": "100000"}},
            {"type": "input", "block_id": "log", "optional": True, "label": _plain(form["log"]),
             "hint": _plain(form["log_hint"]),
             "element": {"type": "plain_text_input", "action_id": "value", "multiline": True,
                         "max_length": MAX_LOG}},
        ],
    }  # fmt: skip


def thanks(words: Any, answered: Answered, answers: tuple[str, int | None, str]) -> dict:
    """The form's last page: recorded, and whether it matches what headroom predicted (said plainly when not)."""
    from bot.blocks import escape

    (outcome, held, pasted), form, told = answers, words.fit_form, answered.t
    text = str(words.fit_thanks(escape(told.instance or ""), told.max_requests, outcome, held, bool(pasted.strip())))
    return {"type": "modal", "callback_id": FIT_VIEW, "title": _plain(form["title"]), "close": _plain(form["done"]),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]}  # fmt: skip


def form_answers(view: dict) -> tuple[str, int | None, str]:
    """(outcome, requests held, pasted log) from a submitted form; anything malformed reads as not given."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    values = values if isinstance(values, dict) else {}

    def field(block: str) -> dict:
        found = values.get(block)
        element = found.get("value") if isinstance(found, dict) else None
        return element if isinstance(element, dict) else {}

    chosen = field("outcome").get("selected_option")
    outcome = chosen.get("value") if isinstance(chosen, dict) else None
    held_text = field("held").get("value")
    digits = held_text if isinstance(held_text, str) and held_text.isascii() and held_text.isdecimal() else ""
    held = int(digits) if 0 < len(digits) <= 6 else None  # ASCII digits only: "²".isdigit() is True, int("²") fails
    log = field("log").get("value")
    return (outcome if outcome in OUTCOMES else ""), (held if held else None), (
        log[:MAX_LOG] if isinstance(log, str) else ""
    )

"""Block Kit messages for Slack, assembled within Slack's limits, with a plain-text fallback.

Text comes from the shared Jinja views; this module only arranges it into blocks,
escapes everything that could carry user text, and checks the limits with
slack_sdk's block models before anything is sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from bot.render import explanation, short_gpu, shown_candidates
from engine.catalog.loader import Catalog
from engine.plan import Candidate, Plan
from engine.request import Request

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_TEXT = 10_000  # Slack rejects ~12-13k characters of block text in one message; keep a margin
MAX_BUTTON_VALUE = 2000


class BlockLimitError(ValueError):
    """A message would break one of Slack's Block Kit limits."""


def escape(text: str) -> str:
    """mrkdwn control characters: &, <, > (so '<!channel>' in user text is never a broadcast)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _bold(text: str) -> str:
    return f"*{text}*"


def _code(text: str) -> str:
    return f"\n```{text}```"


@dataclass
class Message:
    text: str  # plain-text fallback (notifications, screen readers)
    blocks: list[dict] = field(default_factory=list)
    fallback_blocks: list[dict] | None = None  # the same answer without a table block

    def to_json(self) -> dict:
        return {"text": self.text, "blocks": self.blocks, "fallback_blocks": self.fallback_blocks}

    @classmethod
    def from_json(cls, data: dict) -> Message:
        return cls(data["text"], data["blocks"], data.get("fallback_blocks"))


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(texts: list[str]) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts[:10]]}


def _sections(text: str) -> list[dict]:
    """Paragraphs grouped into sections of at most 3,000 characters."""
    blocks, current = [], ""
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        paragraph = paragraph[: MAX_SECTION - 1]
        if current and len(current) + len(paragraph) + 2 > MAX_SECTION:
            blocks.append(_section(current))
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        blocks.append(_section(current))
    return blocks


_COLUMNS = ("instance", "GPUs", "layout", "verdict", "max req", "tok/s/user", "$/hour", "$/1M tok")


def _row(c: Candidate) -> list[str]:
    per_node = c.gpu_count // c.nodes
    gpus = f"{per_node}× {short_gpu(c.gpu)} {c.gpu_memory_aws_gib:.0f} GiB"
    layout = f"TP{c.tp}" + (f" PP{c.pp}" if c.pp > 1 else "") + (f" ×{c.replicas}" if c.replicas > 1 else "")
    return [
        c.instance or "pinned GPUs",
        gpus if c.nodes == 1 else f"{c.nodes} nodes of {gpus}",
        layout,
        c.verdict,
        f"{c.max_concurrency:.1f}",
        f"{c.decode_tokens_per_s_per_user:.0f}" if c.decode_tokens_per_s_per_user else "—",
        f"${c.usd_per_hour:,.2f}" if c.usd_per_hour else "n/a",
        f"${c.usd_per_million_tokens:,.2f}" if c.usd_per_million_tokens else "n/a",
    ]


def _table_block(picks: list[Candidate]) -> dict:
    rows = [[{"type": "raw_text", "text": cell} for cell in _COLUMNS]]
    rows += [[{"type": "raw_text", "text": escape(cell)} for cell in _row(c)] for c in picks]
    align = ["left", "left", "left", "left", "right", "right", "right", "right"]
    return {"type": "table", "rows": rows, "column_settings": [{"align": a} for a in align]}


def _table_fallback(picks: list[Candidate]) -> dict:
    """The ranking as a monospaced section, for surfaces that refuse table blocks."""
    rows = [list(_COLUMNS)] + [_row(c) for c in picks]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    return _section(escape("```" + "\n".join(lines) + "```")[:MAX_SECTION])


_BUTTONS: tuple[tuple[str, dict], ...] = (
    ("16k context", {"context_tokens": 16384}),
    ("32k context", {"context_tokens": 32768}),
    ("128k context", {"context_tokens": 131072}),
    ("FP8 KV", {"kv_dtype": "fp8"}),
    ("INT4 weights", {"weights": "int4"}),
)


def _button_value(request: Request, change: dict, more: bool = False) -> str | None:
    try:
        data = request.model_copy(update=change).model_dump(mode="json", exclude_defaults=True)
        Request.model_validate(data)
    except ValueError:
        return None
    value = json.dumps({"r": data, "more": more}, separators=(",", ":"))
    return value if len(value) <= MAX_BUTTON_VALUE else None


def _actions(request: Request, plan: Plan, more: bool) -> dict | None:
    elements = []
    for i, (label, change) in enumerate(_BUTTONS):
        if all(getattr(request, k) == v or getattr(plan.request, k, None) == v for k, v in change.items()):
            continue  # already asked for
        value = _button_value(request, change)
        if value:
            elements.append(
                {
                    "type": "button",
                    "action_id": f"replan_{i}",
                    "text": {"type": "plain_text", "text": label},
                    "value": value,
                }
            )
    if not more:
        value = _button_value(request, {}, more=True)
        if value:
            elements.append(
                {
                    "type": "button",
                    "action_id": "replan_more",
                    "text": {"type": "plain_text", "text": "Show more instances"},
                    "value": value,
                }
            )
    return {"type": "actions", "elements": elements} if elements else None


def _header_text(plan: Plan) -> str:
    r = plan.request
    context = f"{r.context_tokens // 1024}k" if r.context_tokens % 1024 == 0 else f"{r.context_tokens:,}"
    users = "max users" if r.concurrency == "max" else f"{r.concurrency} user{'s' if r.concurrency != 1 else ''}"
    return f"{plan.model.name} · {r.weights_dtype.upper()} · {context} context · {users}"[:MAX_HEADER]


def _fallback_text(plan: Plan) -> str:
    top = plan.top
    if not top:
        return escape(f"{_header_text(plan)}: nothing I evaluated serves this; see the reasons in the answer.")
    price = f"${top.usd_per_hour:,.2f}/h" if top.usd_per_hour else "no on-demand price"
    return escape(
        f"{_header_text(plan)}: {top.instance or 'the pinned GPUs'} "
        f"({top.gpu_count} × {short_gpu(top.gpu)}, {price}) holds {top.max_concurrency:.1f} requests per replica."
    )


def answer_message(
    env: Environment, plan: Plan, request: Request, changes: list[str] | None = None, more: bool = False
) -> Message:
    """The whole answer: header, what changed, budget, ranking table, explanation, assumptions, buttons."""
    picks, _ = shown_candidates(plan, 25 if more else 8)
    r, budget = plan.request, plan.budget
    head: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": _header_text(plan)}}]
    if r.model_note:
        head.append(_context([escape(f"Assuming {r.model_note}.")]))
    if changes:
        head.append(_section(escape("*What changed*\n" + "\n".join(f"• {line}" for line in changes))))
    head.append(
        _section(
            escape(
                f"*Weights* {budget.weights_gib:.1f} GiB ({plan.model.weight_layout}) · *KV* "
                f"{budget.kv_bytes_per_token:,} bytes per token ({plan.model.attention}), "
                f"{budget.kv_gib_per_sequence:.2f} GiB per {r.context_tokens:,}-token request"
            )
        )
    )
    body = _sections(escape(explanation(env, plan, bold=_bold, code=_code)))
    notes = [escape(w) for w in plan.warnings] + [escape(" · ".join(plan.assumptions))]
    notes.append(
        escape(
            f"vLLM {r.vllm_version} accounting · specs as of {plan.catalog_as_of['instance_specs']} · "
            f"{r.region} on-demand prices as of {plan.catalog_as_of['prices']}"
        )
    )
    tail = [_context(notes)]
    actions = _actions(request, plan, more)
    if actions:
        tail.append(actions)
    ranking_table = [_table_block(picks)] if picks else []
    ranking_text = [_table_fallback(picks)] if picks else []
    blocks = _fit(head, ranking_table, body, tail)
    fallback = _fit(head, ranking_text, body, tail)
    return Message(_fallback_text(plan), blocks, fallback)


def _fit(head: list[dict], ranking: list[dict], body: list[dict], tail: list[dict]) -> list[dict]:
    """Drop trailing explanation sections until the message is within the block and text budgets."""
    body = list(body)
    while True:
        blocks = head + ranking + body + tail
        if len(blocks) <= MAX_BLOCKS and text_length(blocks) <= MAX_TEXT:
            return blocks
        if not body:
            raise BlockLimitError("the answer's fixed parts exceed Slack's limits")
        body.pop()


def error_message(message: str, suggestions: list[str] | None = None, understood: dict | None = None) -> Message:
    """A short reply that says what was wrong, what was understood, and examples that work."""
    lines = [f":warning: {escape(message)}"]
    if understood:
        lines.append("I understood: " + escape(", ".join(f"{k}={v}" for k, v in understood.items())))
    if suggestions:
        lines.append("Did you mean: " + escape(", ".join(suggestions[:5])))
    lines.append("Try: `llama 3.3 70b fp8 8k context` · `qwen2.5 72b bf16 32k 20 users` · `70B fp8 on g6e.12xlarge`")
    text = "\n".join(lines)
    return Message(text, [_section(text[:MAX_SECTION])])


HELP = (
    "*Ask me which EC2 instance will serve a model with vLLM.* Mention me, DM me, or use `/headroom`.\n"
    "• `@headroom llama 3.3 70b fp8 8k context`\n"
    "• `@headroom qwen2.5 72b bf16 32k, 20 users, under $20/h`\n"
    "• `/headroom deepseek r1 fp8 on p5en just me` (only you see the answer)\n"
    "Then reply in the thread: `what about 32k?` · `int4 instead` · `with fp8 kv` · `64 users` · "
    "`only g6e` · `exclude p5` · `why not g6.12xlarge?` · `start over`."
)


def help_message() -> Message:
    return Message("Ask me e.g. 'llama 3.3 70b fp8 8k context'.", [_section(HELP)])


def home_view(catalog: Catalog) -> dict:
    """App Home: how to ask, examples, and how fresh the data is."""
    as_of = catalog.as_of
    freshness = (
        f"*Data as of* — EC2 specs {as_of['instance_specs']}, on-demand prices {as_of['prices']} ({catalog.region}), "
        f"GPUs {as_of['gpus']}, models {as_of['models']}, vLLM behaviour {as_of['vllm']}.\n"
        f"{len(catalog.instances)} instance types, {len(catalog.gpus)} accelerators, {len(catalog.models)} models."
    )
    view: dict[str, Any] = {
        "type": "home",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "headroom: size your LLM on EC2"}},
            _section(HELP),
            {"type": "divider"},
            _section(freshness),
        ],
    }
    check_limits(view["blocks"], max_blocks=100)
    return view


# --- limits ------------------------------------------------------------------------------------


def _texts(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        return found + [
            t for key, value in node.items() if key != "text" or not isinstance(value, str) for t in _texts(value)
        ]
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    return []


def text_length(blocks: list[dict]) -> int:
    return sum(len(t) for t in _texts(blocks))


def check_limits(blocks: list[dict], max_blocks: int = MAX_BLOCKS, deep: bool = True) -> None:
    """The documented limits, and (deep) a round trip through slack_sdk's block models and their validators.

    The bot checks every answer shallowly (block count, text budget, section/header/table/button limits);
    the tests check every payload deeply, so the templates cannot drift past what slack_sdk accepts.
    """
    if len(blocks) > max_blocks:
        raise BlockLimitError(f"{len(blocks)} blocks, over the limit of {max_blocks}")
    if text_length(blocks) > MAX_TEXT:
        raise BlockLimitError(f"{text_length(blocks)} characters of block text, over {MAX_TEXT}")
    action_ids: set[str] = set()
    for raw in blocks:
        if deep:
            block = Block.parse(raw)
            if block is None:
                raise BlockLimitError(f"unknown block type {raw.get('type')!r}")
            try:
                block.validate_json()
            except SlackObjectFormationError as exc:
                raise BlockLimitError(f"{raw['type']} block: {exc}") from exc
            if block.to_dict().get("type") != raw["type"]:
                raise BlockLimitError(f"block {raw['type']} does not round-trip")
        if raw["type"] == "section" and len(raw["text"]["text"]) > MAX_SECTION:
            raise BlockLimitError("section text over 3,000 characters")
        if raw["type"] == "header" and len(raw["text"]["text"]) > MAX_HEADER:
            raise BlockLimitError("header over 150 characters")
        if raw["type"] == "table" and (len(raw["rows"]) > 100 or any(len(row) > 20 for row in raw["rows"])):
            raise BlockLimitError("table over 100 rows or 20 cells")
        for element in raw.get("elements", []):
            action_id = element.get("action_id")
            if action_id:
                if action_id in action_ids:
                    raise BlockLimitError(f"duplicate action_id {action_id}")
                action_ids.add(action_id)
                if len(element.get("value", "")) > MAX_BUTTON_VALUE:
                    raise BlockLimitError("button value over 2,000 characters")

"""Block Kit messages for Slack, assembled within Slack's limits, with a plain-text fallback.

Words come from the templates (``bot.render.Views``); this module only arranges them into blocks,
escapes everything that could carry user text, and checks the limits with
slack_sdk's block models before anything is sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from bot.block_rules import RICH_BLOCKS, BlockRuleError, check_message  # issue 15: charts and data tables
from bot.chart_blocks import ChartBlocks  # issue 15
from bot.feedback import feedback_blocks
from bot.render import Views, shown_candidates
from engine.catalog.loader import Catalog
from engine.charts import Charts, budget_chart  # issue 15
from engine.errors import HeadroomError
from engine.notes import Note
from engine.plan import Candidate, Plan
from engine.request import Request

if TYPE_CHECKING:  # a plan never needs the diagnosis module loaded
    from engine.diagnose import Diagnosis

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_TEXT = 10_000  # Slack rejects ~12-13k characters of block text in one message; keep a margin
MAX_BUTTON_VALUE = 2000
MAX_CONTEXT_TEXT = 2000  # one note under the answer
MAX_FALLBACK_TEXT = 3000  # the notification text; lists a request repeats are clipped here too
MIN_CLIPPED = 200  # when the fixed parts are over budget, no text is cut shorter than this


class BlockLimitError(ValueError):
    """A message would break one of Slack's Block Kit limits."""


def escape(text: str) -> str:
    """mrkdwn control characters: &, <, > (so '<!channel>' in user text is never a broadcast)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary with an ellipsis: a list that a request repeats
    5,000 times (families, exclusions) reads as its start and "…" instead of breaking Slack's limits."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ", limit // 2)
    return (cut[:space] if space > 0 else cut).rstrip() + "…"


def _bold(text: str) -> str:
    return f"*{text}*"


def _code(text: str) -> str:
    return f"\n```{text}```"


@dataclass
class Message:
    text: str  # plain-text fallback (notifications, screen readers)
    blocks: list[dict] = field(default_factory=list)
    fallback_blocks: list[dict] | None = None  # the same answer without a table block
    chart_blocks: list[dict] | None = None  # issue 15: charts + data_table, tried before `blocks`
    picture: dict | None = None  # issue 15: the budget chart model (JSON), drawn as a PNG where charts are refused

    def to_json(self) -> dict:
        return {"text": self.text, "blocks": self.blocks, "fallback_blocks": self.fallback_blocks,
                "chart_blocks": self.chart_blocks, "picture": self.picture}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> Message:
        return cls(data["text"], data["blocks"], data.get("fallback_blocks"), data.get("chart_blocks"),
                   data.get("picture"))  # fmt: skip


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def _context(texts: list[str]) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(t, MAX_CONTEXT_TEXT)} for t in texts[:10]]}


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


class SlackViews:
    """Block Kit messages from the templates' words (templates/slack.j2): the only place that arranges blocks."""

    def __init__(self, views: Views) -> None:
        self.views = views
        self.words = views.macros("slack.j2")
        self.charts = ChartBlocks(views)  # issue 15

    def _row(self, c: Candidate) -> list[str]:
        return str(self.words.row(c)).split("\x1f")

    def _table_block(self, picks: list[Candidate]) -> dict:
        rows = [[{"type": "raw_text", "text": cell} for cell in self.words.columns]]
        rows += [[{"type": "raw_text", "text": escape(cell)} for cell in self._row(c)] for c in picks]
        align = ["left", "left", "left", "left", "right", "right", "right", "right"]
        return {"type": "table", "rows": rows, "column_settings": [{"align": a} for a in align]}

    def _table_fallback(self, picks: list[Candidate]) -> dict:
        """The ranking as a monospaced section, for surfaces that refuse table blocks."""
        rows = [list(self.words.columns)] + [self._row(c) for c in picks]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
        return _section(escape("```" + "\n".join(lines) + "```")[:MAX_SECTION])

    def _actions(self, request: Request, plan: Plan, more: bool) -> dict | None:
        elements = []
        for i, (name, change) in enumerate(BUTTONS):
            if all(getattr(request, k) == v or getattr(plan.request, k, None) == v for k, v in change.items()):
                continue  # already asked for
            value = button_value(request, change)
            if value:
                elements.append(self._button(f"replan_{i}", self.words.buttons[name], value))
        if not more:
            value = button_value(request, {}, more=True)
            if value:
                elements.append(self._button("replan_more", self.words.buttons["more"], value))
        return {"type": "actions", "elements": elements} if elements else None

    @staticmethod
    def _button(action_id: str, label: str, value: str) -> dict:
        return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": label}, "value": value}

    def answer(
        self, plan: Plan, request: Request, changes: list[Note] | None = None, more: bool = False,
        unread: tuple[str, ...] = (), remarks: tuple[Note, ...] = (), charts: Charts | None = None,
    ) -> Message:  # fmt: skip
        """The whole answer: header, what was not used, what changed, budget, ranking, explanation, assumptions.

        `charts` (issue 15): the budget chart (made from the plan when not given) and a capacity curve.
        """
        picks, _ = shown_candidates(plan, 25 if more else 8)
        head: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": self._header(plan)}}]
        if plan.request.model_note:
            head.append(_context([escape(str(self.words.assuming(plan)))]))
        if unread or remarks:
            said = [escape(str(self.words.unread(unread)))] if unread else []
            head.append(_context(said + [escape(self.views.say(r)) for r in remarks]))
        if changes is not None:
            head.append(_section(escape(str(self.words.changed(changes)).strip())))
        head.append(_section(escape(str(self.words.budget(plan)))))
        # issue 15: charts + data_table on the top rung; the charts' words in the layouts below it
        rows = [(c, self._row(c)) for c in picks]
        charts = charts or Charts(budget_chart(plan))
        pictures = self.charts.parts(charts, list(self.words.columns), rows)
        chart_head, head = head + pictures.charts, head + [_section(escape(t)) for t in pictures.text]
        body = _sections(escape(self.views.explanation(plan, bold=_bold, code=_code)))
        if plan.regions:  # regions (issue 12)
            body = [_section(escape(str(self.words.regions(plan)).strip())), *body]
        notes = [escape(self.views.say(w)) for w in plan.warnings]
        notes.append(escape(" · ".join(self.views.say(a) for a in plan.assumptions)))
        notes.append(escape(str(self.words.as_of(plan))))
        tail = [_context(notes)]
        actions = self._actions(request, plan, more)
        if actions:
            tail.append(actions)
        tail += feedback_blocks(self.views.macros("assistant.j2"), request, plan)  # issue 15: "Did it fit?", 👍/👎
        ranking_table = [self._table_block(picks)] if picks else []
        ranking_text = [self._table_fallback(picks)] if picks else []
        blocks = _fit(head, ranking_table, body, tail)
        fallback = _fit(head, ranking_text, body, tail)
        rich = _fit(chart_head, pictures.table, body, tail) if pictures.charts else None  # issue 15
        picture = charts.budget.to_json() if charts.budget else None
        return Message(clip(escape(str(self.words.fallback(plan))), MAX_FALLBACK_TEXT), blocks, fallback, rich, picture)

    def diagnosis(self, d: Diagnosis) -> Message:
        """A pasted log's diagnosis: what happened, the budget next to the log, fixes (same words as the terminal)."""
        text = self.views.diagnosis(d, bold=_bold, code=_code)
        header = {"type": "header", "text": {"type": "plain_text", "text": str(self.words.diagnosis_header(d))}}
        rated = feedback_blocks(self.views.macros("assistant.j2"), d.request, d.plan, fit=False) if d.request else []
        blocks = _fit([header], [], _sections(escape(text)), rated)  # issue 15: 👍/👎 on a diagnosis too
        return Message(escape(str(self.views.macros("diagnosis.j2").headline(d)))[:MAX_SECTION], blocks)

    def _header(self, plan: Plan) -> str:
        return str(self.words.header(plan))[:MAX_HEADER]

    def error(self, exc: HeadroomError) -> Message:
        """A short reply that says what was wrong, what was understood, and examples that work."""
        understood = {k: escape(str(v)) for k, v in self.views.understood(exc).items()}
        suggestions = [escape(s) for s in exc.suggestions]
        text = clip(str(self.words.error(escape(self.views.error(exc)), understood, suggestions)).strip(), MAX_SECTION)
        return Message(text, [_section(text)])

    def help(self) -> Message:
        return Message(str(self.words.help_text()), [_section(str(self.words.help()))])

    def home(self, catalog: Catalog) -> dict:
        """App Home: how to ask, examples, and how fresh the data is."""
        freshness = str(
            self.words.freshness(catalog.as_of, catalog.region, len(catalog.instances), len(catalog.gpus),
                                 len(catalog.models))
        )  # fmt: skip
        view: dict[str, Any] = {
            "type": "home",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": str(self.words.home_title())}},
                _section(str(self.words.help())),
                {"type": "divider"},
                _section(freshness),
            ],
        }
        check_limits(view["blocks"], max_blocks=100)
        return view


#: the re-plan buttons under an answer: (label key in templates/slack.j2, what the click changes)
BUTTONS: tuple[tuple[str, dict], ...] = (
    ("context_16k", {"context_tokens": 16384}),
    ("context_32k", {"context_tokens": 32768}),
    ("context_128k", {"context_tokens": 131072}),
    ("kv_fp8", {"kv_dtype": "fp8"}),
    ("weights_int4", {"weights": "int4"}),
)


def button_value(request: Request, change: dict, more: bool = False) -> str | None:
    try:
        data = request.replace(**change).as_data(exclude_defaults=True)
    except ValueError:
        return None
    value = json.dumps({"r": data, "more": more}, separators=(",", ":"))
    return value if len(value) <= MAX_BUTTON_VALUE else None


def _fit(head: list[dict], ranking: list[dict], body: list[dict], tail: list[dict]) -> list[dict]:
    """Drop trailing explanation sections until the message is within the block and text budgets; if the
    fixed parts alone are over (a request that repeats a list thousands of times), clip their longest texts."""
    body = list(body)
    while True:
        blocks = head + ranking + body + tail
        excess = text_length(blocks) - MAX_TEXT
        if len(blocks) <= MAX_BLOCKS and excess <= 0:
            return blocks
        if body:
            body.pop()
        elif len(blocks) > MAX_BLOCKS or not _shorten_longest(head + tail, excess):
            raise BlockLimitError("the answer's fixed parts exceed Slack's limits")


def _shorten_longest(blocks: list[dict], excess: int) -> bool:
    """Clip the longest section or note text by `excess` characters (not below MIN_CLIPPED); False if none can be."""
    texts = [b["text"] for b in blocks if b["type"] == "section"]
    texts += [e for b in blocks if b["type"] == "context" for e in b["elements"]]
    longest = max(texts, key=lambda t: len(t["text"]), default=None)
    if longest is None or len(longest["text"]) <= MIN_CLIPPED:
        return False
    longest["text"] = clip(longest["text"], max(MIN_CLIPPED, len(longest["text"]) - excess))
    return True


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


def _check_rich(blocks: list[dict]) -> None:
    """Issue 15: charts and data tables by Slack's written rules (bot/block_rules.py), at most two charts."""
    try:
        check_message(blocks)
    except BlockRuleError as exc:
        raise BlockLimitError(str(exc)) from exc


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
    _check_rich(blocks)  # issue 15
    for raw in blocks:
        if raw["type"] in RICH_BLOCKS:  # issue 15: checked by _check_rich (slack_sdk has no models for them yet)
            continue
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

"""The request language: free text -> the fields it names, a Request, or a follow-up's changes.

Reading is a sequence of rules (``engine/parse_rules.py``) over cleaned text. Each rule
consumes the words it understands and records fields; the model is read from what is
left (``engine/parse_model.py``); whatever remains is reported as not understood.
Nothing but ParseError leaves here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from engine.catalog.loader import Catalog
from engine.catalog.resolve import resolve_model, suggest_models
from engine.constraints import Invalid
from engine.errors import HeadroomError, ParseError
from engine.followup import with_pins_replaced
from engine.notes import Note
from engine.parse_extras import extra_rules
from engine.parse_model import find_model, hf_ids
from engine.parse_rules import (
    INSTANCE_RULES,
    NUMBER_RULES,
    RESET,
    UNKNOWN_PRECISION,
    WEIGHT_WORDS,
    Fields,
    Rule,
    lexicon,
)
from engine.regions import place_region
from engine.request import Request, RequestDelta
from engine.text import clean

MAX_CHARS = 2000
T = TypeVar("T")

# words that carry no meaning of their own in a sizing question
STOPWORDS = frozenset(
    """a an the and or of for to with on in at by from into onto using use run running serve serving served
    host hosting deploy deploying can could would will should do does did is are be it its i we you my our
    what about how much many which what's whats instead please pls thanks hi hey hello headroom model llm
    need needs want wants if then than that this those these there here just also too give me us tell show
    recommend recommendation best good ok okay so like size sizing fit fits fitting will work gpu gpus vram
    memory instance instances ec2 aws cluster box machine machines context ctx tokens token length window
    precision weights quantized quantization version setup config configuration plan option options
    try trying get where users user concurrent load traffic long up same but now again let's lets go
    cost price much per hour take docs doc link see @headroom oom command start crash run out api key""".split()
)
#: fields a flag (or a pasted command) and the words may both give, in the same canonical form
_FLAG_CHECKED = frozenset(
    {
        "weights",
        "kv_dtype",
        "context_tokens",
        "input_tokens",
        "output_tokens",
        "concurrency",
        "tp",
        "gpu_memory_utilization",
        "region",  # regions (issue 12): "in frankfurt" with --region eu-west-1 is refused, not settled
    }
)
#: fields whose matches add up within one message ("exclude p5 and also exclude p4d")
_ACCUMULATE = frozenset({"exclude_families"})


class Reading:
    """What one message says: the fields it names, a model-reading note, 'start over', and the words left.

    A plain class (a dataclass would load dataclasses and inspect on every start, issue 14).
    """

    __slots__ = ("text", "found", "reset", "model_note", "asked")

    def __init__(self, text: str) -> None:
        self.text = text  # what is left to read
        self.found: Fields = {}
        self.reset = False
        self.model_note: Note | None = None
        self.asked = True  # the message had words at all

    def apply(self, rule: Rule) -> None:
        """Record each match of `rule` and consume its words; two different values for one field are refused."""
        pieces, last = [], 0
        for match in rule.pattern.finditer(self.text):
            for key, value in rule.read(match).items():
                if key in _ACCUMULATE and key in self.found:
                    value = tuple(dict.fromkeys((*self.found[key], *value)))  # type: ignore[misc]
                elif key in self.found and self.found[key] != value:
                    # "4k prompts ... 1k context", "fp8 ... int4": which one is meant is the user's to say
                    raise ParseError("conflicting_values", field=key, first=self.found[key], second=value)
                self.found[key] = value
            pieces += [self.text[last : match.start()], " "]
            last = match.end()
        if pieces:
            self.text = "".join(pieces) + self.text[last:]

    def cut(self, start: int, end: int) -> None:
        self.text = self.text[:start] + " " + self.text[end:]

    @property
    def unknown(self) -> list[str]:
        words = re.findall(r"[^\s?!,.;:()\[\]{}\"'/]+", self.text)
        kept = [w for w in words if w not in STOPWORDS and not re.fullmatch(r"[\W_]+", w)]
        if not kept:
            return []
        from engine.paste_patterns import redact  # the secret patterns, compiled only when words are said back

        return [w if redact(w) == w else "***" for w in kept]  # a pasted key is never said back


def read(text: str, catalog: Catalog) -> Reading:
    """Every field `text` names (no model required)."""
    if len(text) > MAX_CHARS:
        raise ParseError("too_long", chars=len(text), limit=MAX_CHARS)
    reading = Reading(clean(text))
    reading.asked = bool(reading.text.strip())
    if not reading.asked:  # flags only: no words, nothing to read (and no pattern to compile)
        return reading
    reset = RESET.match(reading.text)
    if reset:
        reading.reset = True
        reading.text = reading.text[reset.end() :]
    for extra in extra_rules(reading.text):  # issue 10: a drafter is named before the model is looked for
        reading.apply(extra)
    known, unknown = hf_ids(reading.text, clean(text, lower=False), catalog)
    for match in reversed(known):
        reading.found.setdefault("model", match.model)
        if match.weights:
            reading.found.setdefault("weights", match.weights)
        reading.cut(match.start, match.end)
    if unknown and not known:
        repo = unknown[0]
        raise ParseError("unknown_hub_model", repo=repo, suggestions=suggest_models(catalog, repo.split("/")[-1]))
    words = lexicon(catalog)
    for rule in (*INSTANCE_RULES, *words.family_rules, *NUMBER_RULES, words.gpu_pin):
        reading.apply(rule)
    odd = UNKNOWN_PRECISION.search(reading.text)
    if odd:
        raise ParseError("unknown_precision", word=odd.group(1), known=sorted(set(WEIGHT_WORDS.values())))
    if "model" not in reading.found:
        model = find_model(reading.text, catalog)
        if model:
            reading.found["model"] = model.model
            reading.model_note = model.note
            reading.cut(model.start, model.end)
    return reading


def _safe(function: Callable[[], T]) -> T:
    """No exception but ParseError leaves the parser, whatever the input; a bug is logged with its cause."""
    try:
        return function()
    except ParseError:
        raise
    except Invalid as exc:
        raise ParseError("invalid_values", problems=exc.problems) from exc
    except Exception as exc:  # noqa: BLE001 - the parser's promise: only ParseError escapes
        import logging  # only on a failure (issue 14: a start-up does not load it)

        logging.getLogger("headroom.parse").exception("the parser failed on a message")  # the cause, never the text
        raise ParseError("unreadable") from exc


def _no_model(reading: Reading, catalog: Catalog) -> ParseError:
    unknown = reading.unknown
    return ParseError(
        "no_model",
        understood=dict(reading.found),
        unknown=unknown,
        suggestions=suggest_models(catalog, " ".join(unknown)[:60]) if unknown else [],
        words=" ".join(unknown),
    )


def request_fields(reading: Reading) -> Fields:
    """The Request fields a reading names, with the model-reading note when it names a model."""
    fields = dict(reading.found)
    if "model" in fields:
        fields["model_note"] = reading.model_note
    return with_pins_replaced(fields)


def parse_message(text: str, catalog: Catalog) -> Reading:
    """What a message names, read once; the service decides what it means for the conversation."""
    return _safe(lambda: read(text, catalog))


def _model_id(catalog: Catalog, name: str) -> str | None:
    """The catalog id a flag's model names (None: not a catalog model, e.g. a Hub id read later)."""
    try:
        return resolve_model(catalog, name).spec.id
    except HeadroomError:
        return None


def request_from(reading: Reading, catalog: Catalog, overrides: Fields | None = None) -> Request:
    """The Request a reading (and command-line flags on top of it) makes; a model is required."""

    if overrides and "region" in overrides:  # regions (issue 12): --region frankfurt reads like the words
        overrides = {**overrides, "region": place_region(catalog, str(overrides["region"]))}

    def run() -> Request:
        fields = request_fields(reading)
        if overrides:
            for key in _FLAG_CHECKED & fields.keys() & overrides.keys():
                if fields[key] != overrides[key]:  # "8k context" with --context 16k: neither wins silently
                    raise ParseError("conflicting_values", field=key, first=fields[key], second=overrides[key])
            if "model" in overrides:
                said, flag = fields.get("model"), str(overrides["model"])
                # the words may name a release ("RedHatAI/...-FP8-dynamic"): compare what both name in the catalog
                if said and flag != said and _model_id(catalog, flag) not in {said, _model_id(catalog, str(said)), None}:
                    raise ParseError("conflicting_values", field="model", first=said, second=overrides["model"])
                fields["model_note"] = None
            fields.update(overrides)
        if "model" not in fields:
            raise _no_model(reading, catalog) if reading.asked else ParseError("no_model_given")
        return Request.from_data(fields)

    return _safe(run)


def parse_fields(text: str, catalog: Catalog) -> Fields:
    """The Request fields a text names (no model required), for merging with command-line flags."""
    return _safe(lambda: request_fields(read(text, catalog)))


def parse_request(text: str, catalog: Catalog) -> Request:
    """A whole request: a model is required; everything else has defaults."""

    return request_from(parse_message(text, catalog), catalog)


def parse_followup(text: str, catalog: Catalog) -> RequestDelta:
    """A thread follow-up: only what it names changes. 'start over' begins a new request."""

    def run() -> RequestDelta:
        reading = read(text, catalog)
        if reading.reset:
            if "model" in reading.found:
                Request.from_data(request_fields(reading))  # validate now, with a clear message
            return RequestDelta(changes=request_fields(reading), reset=True, unread=tuple(reading.unknown))
        if not reading.found:
            unknown = reading.unknown
            raise ParseError(
                "nothing_to_change",
                unknown=unknown,
                suggestions=suggest_models(catalog, " ".join(unknown)[:60]) if unknown else [],
                words=" ".join(unknown),
            )
        return RequestDelta(changes=request_fields(reading), unread=tuple(reading.unknown))

    return _safe(run)

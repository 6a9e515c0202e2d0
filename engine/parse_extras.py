"""Words for issue 10's extras: a VLM served for text only, a speculative drafter, LoRA slots.

Applied before the model is looked for, so "draft llama-3.2-1b" is read as the drafter and
never as the model being planned. Same shape as ``engine.parse_rules``: (pattern, fields).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from engine.errors import ParseError
from engine.parse_rules import Fields, Rule, _constant


def _given(**groups: tuple[str, str | None]) -> Fields:
    """Only the groups that matched; numbers as ints, names as they were written."""
    found: Fields = {}
    for key, (kind, value) in groups.items():
        if value:
            found[key] = int(value) if kind == "int" else value
    return found


def _ints(*fields: str) -> Callable[[re.Match[str]], Fields]:
    """Each field from its group (the first matching group when one field has several); unmatched left out."""

    def read(m: re.Match[str]) -> Fields:
        groups = list(m.groups())
        if len(fields) == 1:
            return _given(**{fields[0]: ("int", next((g for g in groups if g), None))})
        return _given(**{f: ("int", g) for f, g in zip(fields, groups, strict=False)})

    return read


#: (pattern, what a match sets), applied in this order before Hub ids and model names are read
_TABLE: tuple[tuple[str, Callable[[re.Match[str]], Fields]], ...] = (
    # switching an extra off (a follow-up), before the words that switch it on
    (r"\b(?:no|without|drop|disable)\s+(?:the\s+)?(?:draft(?:er)?|speculative decoding|speculation|spec decode|mtp)\b",
     _constant({"draft": None, "speculative_tokens": None})),
    (r"\b(?:no|without|drop|disable)\s+(?:the\s+)?loras?\b", _constant({"max_loras": None, "lora_rank": None})),
    (r"\bwith\s+(?:images?|vision)\b", _constant({"text_only": False, "zero_modalities": ()})),
    (r"\b(?:text[- ]only|language[- ]model[- ]only|(?:no|without|skip(?:ping)?)\s+(?:the\s+)?"
     r"(?:images?|vision(?:\s+tower)?))\b", _constant({"text_only": True})),
    (r"\b(\d+)\s*(?:speculative|draft(?:ed)?|spec)\s*tokens?\b|\bnum[-_ ]speculative[-_ ]tokens\s*[=:]?\s*(\d+)\b",
     _ints("speculative_tokens")),
    # a named drafter before a sized one: "70b draft llama-3.2-1b"
    # ... but not a precision that follows "1b draft" ("with a 1b draft int4" asks for INT4 weights)
    (r"\bdraft(?:er)?(?:\s+model)?\s*(?:[=:]|of|with|is)?\s*(?!(?:int\d+|fp\d+|bf16|nvfp4|mxfp4|w\d+a\d+)\b)"
     r"([a-z][\w.\-/]*\d[\w.\-/]*)", lambda m: {"draft": m.group(1)}),
    (r"\b(\d+(?:\.\d+)?b)\s+draft(?:er)?(?:\s+model)?\b", lambda m: {"draft": m.group(1)}),  # "with a": stopwords
    (r"\b(?:own\s+)?(?:mtp|multi[- ]token[- ]prediction|nextn)"
     r"(?:\s+(?:heads?|layers?|modules?|speculative decoding|speculation|drafter|draft))?\b", _constant({"draft": "mtp"})),
    (r"\blora\s*(?:rank|r)\s*[=:]?\s*(\d+)(?:\s*(?:x|×|\*)\s*(\d+)\b)?", _ints("lora_rank", "max_loras")),
    (r"\b(\d+)\s*(?:lora(?:s|\s+adapters?)?|adapters?)(?:\s*(?:of|at|with)?\s*rank\s*(\d+))?\b",
     _ints("max_loras", "lora_rank")),
    (r"\bmax[-_ ]loras\s*[=:]?\s*(\d+)\b", _ints("max_loras")),
    (r"\bmax[-_ ]lora[-_ ]rank\s*[=:]?\s*(\d+)\b|\brank\s*(\d+)\s*loras?\b", _ints("lora_rank")),
)  # fmt: skip
EXTRA_RULES: tuple[Rule, ...] = tuple(Rule(re.compile(pattern), read) for pattern, read in _TABLE)
#: a word every rule above needs: one search instead of a dozen on text that names no extra
_ANY = re.compile(r"draft|mtp|nextn|multi|lora|adapter|rank|only|image|vision|spec")


def extra_rules(text: str) -> tuple[Rule, ...]:
    """The rules worth applying to `text` (none when it names no extra)."""
    return EXTRA_RULES if _ANY.search(text) else ()


# --- the same extras in a `vllm serve` command --------------------------------------------------

#: flags read here; the rest of the command is engine.serve_command's
EXTRA_FLAGS = frozenset({
    "--limit-mm-per-prompt", "--language-model-only", "--speculative-config", "--enable-lora", "--max-loras",
    "--max-lora-rank",
})  # fmt: skip
#: vLLM's multi-token-prediction method names (vllm/config/speculative.py MTPModelTypes@v0.21.0, abridged)
_MTP_METHODS = frozenset({"mtp", "deepseek_mtp", "qwen3_next_mtp", "glm4_moe_mtp", "ernie_mtp", "mimo_mtp"})


def read_extra_flag(flag: str, value: str) -> Fields | None:
    """The fields one flag sets; None when it names something not modelled (an EAGLE head, n-gram lookup)."""
    if flag == "--language-model-only":
        return {"text_only": True}
    if flag == "--enable-lora":
        return {_LORA_ON: True}
    if flag in ("--max-loras", "--max-lora-rank"):
        if not value.isdigit():
            raise ParseError("command_bad_value", flag=flag, value=value)
        return {"max_loras" if flag == "--max-loras" else "lora_rank": int(value)}
    if flag == "--limit-mm-per-prompt":
        limits = _json(flag, value) if value.lstrip().startswith("{") else _legacy_limits(flag, value)
        zeros = [m for m, v in limits.items() if (v.get("count", 999) if isinstance(v, dict) else v) == 0]
        return {"zero_modalities": tuple(sorted(zeros))} if zeros else {}  # a modality left out keeps 999
    return speculative_fields(flag, value)


_LORA_ON = "lora_enabled"


def settle_lora(extras: Fields) -> tuple[Fields, list[str]]:
    """LoRA slots exist only with --enable-lora (then at least vLLM's one slot); without it the sizes are unused."""
    fields = dict(extras)
    if fields.pop(_LORA_ON, False):
        fields.setdefault("max_loras", 1)
        return fields, []
    unused = [f"--max-loras {fields.pop('max_loras')}"] if "max_loras" in fields else []
    unused += [f"--max-lora-rank {fields.pop('lora_rank')}"] if "lora_rank" in fields else []
    return fields, unused


def speculative_fields(flag: str, value: str) -> Fields | None:
    """--speculative-config '{"model": ..., "method": ..., "num_speculative_tokens": N}' as request fields."""
    config = _json(flag, value)
    method = str(config.get("method") or ("draft_model" if config.get("model") else "")).lower()
    found: Fields = {}
    if "num_speculative_tokens" in config:
        found["speculative_tokens"] = config["num_speculative_tokens"]
    if method in _MTP_METHODS:
        return {**found, "draft": "mtp"}
    if method == "draft_model" and config.get("model"):
        return {**found, "draft": str(config["model"])}
    return None


def _json(flag: str, value: str) -> dict[str, object]:
    try:
        loaded = json.loads(value)
    except ValueError as exc:
        raise ParseError("command_bad_value", flag=flag, value=value, kind="json") from exc
    if not isinstance(loaded, dict):
        raise ParseError("command_bad_value", flag=flag, value=value, kind="json")
    return loaded


def _legacy_limits(flag: str, value: str) -> dict[str, object]:
    """vLLM's older `image=0,video=0` form."""
    try:
        return {k.strip(): int(v) for k, v in (pair.split("=") for pair in value.split(","))}
    except ValueError as exc:
        raise ParseError("command_bad_value", flag=flag, value=value, kind="limits") from exc

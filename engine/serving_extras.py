"""What a request adds to the model it serves: text-only VLM mode, a speculative drafter, LoRA slots.

These change vLLM's start-up memory (weights, activation peak, KV bytes per token), so they
travel with the served model (``ServedModel.extras``) and every byte count sees them. Built
once per plan from the request, the catalog and the vLLM version (`extras_for`).
"""

import re
from typing import TYPE_CHECKING, NamedTuple

from engine.catalog.loader import Catalog, version_key
from engine.catalog.resolve import resolve_model
from engine.catalog.schema import ModelSpec
from engine.errors import InvalidRequest
from engine.notes import Note, note

if TYPE_CHECKING:
    from engine.request import Request
    from engine.served import ServedModel

#: vLLM's accepted --max-lora-rank values (vllm/config/lora.py MaxLoRARanks@v0.21.0)
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
#: the words that ask for the target's own multi-token-prediction layers as the drafter
MTP_WORDS = frozenset({"mtp", "deepseek_mtp", "qwen3_next_mtp", "nextn"})


class Draft(NamedTuple):
    """A speculative drafter: a separate checkpoint, or the target's own MTP layers."""

    tokens: int  # num_speculative_tokens
    model: "ServedModel | None" = None  # method draft_model: a checkpoint of its own
    mtp_layers: int = 0  # method mtp: num_nextn_predict_layers of the target


class Lora(NamedTuple):
    """--enable-lora --max-loras N --max-lora-rank R (vllm/config/lora.py LoRAConfig)."""

    max_loras: int
    rank: int


class Extras(NamedTuple):
    """Defaults are plain serving: tower loaded and profiled, no drafter, no LoRA."""

    tower: bool = True  # vision tower weights on the GPU
    mm_profile: bool = True  # the start-up profile runs the encoder on a dummy batch
    text_only: bool = False  # asked for: the command carries --limit-mm-per-prompt with zeros
    draft: Draft | None = None
    lora: Lora | None = None


NO_EXTRAS = Extras()


def extras_for(
    req: "Request", spec: ModelSpec, catalog: Catalog, version: str, weights: str | None
) -> tuple[Extras, list[Note]]:
    """The request's extras for this model under this vLLM version, and what the answer should say."""
    from engine.served import serve  # served imports this module for the field's type

    notes: list[Note] = []
    vision = spec.arch.vision
    zeroed = vision is not None and set(vision.modalities) <= set(req.zero_modalities)
    text_only = (req.text_only or zeroed) and spec.arch.vision_params > 0
    tower, profile = True, bool(vision)
    if req.text_only and not spec.arch.vision_params:
        notes.append(note("text_only_not_vlm", model=spec.name))
    elif text_only:
        profile = False  # a zero limit leaves no encoder budget: compute_mm_encoder_budget returns 0, 0
        skippable = vision.tower_skippable_from if vision else None
        tower = not (skippable and version_key(version) >= version_key(skippable))
        notes.append(note("text_only_mode", model=spec.name, tower_skipped=not tower, version=version))
    elif spec.arch.vision_params and not vision:
        notes.append(note("vision_profile_not_modelled", model=spec.name))
    elif req.zero_modalities and vision:  # some modality keeps its limit: vLLM profiles with that one
        kept = [m for m in vision.modalities if m not in req.zero_modalities]
        notes.append(note("mm_limit_partial", zeroed=list(req.zero_modalities), kept=kept))
    draft = None
    if req.draft:
        tokens = req.speculative_tokens or 1
        if req.draft.lower() in MTP_WORDS:
            if not spec.arch.mtp_layers:
                raise InvalidRequest("no_mtp_layers", model=spec.name)
            draft = Draft(tokens, mtp_layers=spec.arch.mtp_layers)
        else:
            drafter = _drafter(catalog, spec, req.draft)
            if drafter.arch.vocab != spec.arch.vocab:  # vLLM needs the target's tokenizer: no command that cannot start
                raise InvalidRequest(
                    "draft_vocab_differs", draft=drafter.name, model=spec.name,
                    draft_vocab=drafter.arch.vocab, model_vocab=spec.arch.vocab,
                )  # fmt: skip
            if drafter.published_params_b >= spec.published_params_b:  # it runs, but drafting cannot pay off
                notes.append(note("draft_not_smaller", draft=drafter.name, model=spec.name,
                                  draft_b=drafter.published_params_b, model_b=spec.published_params_b))  # fmt: skip
            own = weights if weights == spec.dtype else None
            draft = Draft(tokens, model=serve(drafter, own, req.kv_dtype, memo=catalog.memo))  # one object per drafter
        named = draft.model.spec.name if draft.model else "mtp"
        notes.append(note("speculative_decoding", draft=named, tokens=tokens))
    elif req.speculative_tokens:
        notes.append(note("speculative_without_draft", tokens=req.speculative_tokens))
    lora = None
    if req.max_loras or req.lora_rank:
        lora = Lora(req.max_loras or 1, req.lora_rank or 16)
        if spec.arch.mla or spec.arch.linear_attention:
            notes.append(note("lora_attention_not_modelled", model=spec.name))
        notes.append(note("lora_slots", max_loras=lora.max_loras, rank=lora.rank))
    return Extras(tower, profile, text_only, draft, lora), notes


def _drafter(catalog: Catalog, spec: ModelSpec, name: str) -> ModelSpec:
    """A named checkpoint, or for a bare size ("1b") the catalog model of that size sharing the target's vocabulary.

    vLLM's draft-model method needs the target's tokenizer, so the vocabulary decides; the
    family's first word ("llama") breaks ties. The answer names the model it picked.
    """
    if not re.fullmatch(r"\d+(?:\.\d+)?b", name.lower()):
        return resolve_model(catalog, name).spec
    same = [m for m in catalog.models if m.size.lower() == name.lower() and m.arch.vocab == spec.arch.vocab]
    same.sort(key=lambda m: m.family.split("-")[0] != spec.family.split("-")[0])
    if not same:
        raise InvalidRequest("no_draft_of_size", size=name.upper(), model=spec.name)
    return same[0]


def extras_flags(extras: Extras, spec: ModelSpec) -> list[str]:
    """The `vllm serve` flags that start these extras (issue 10), in a stable order."""
    parts: list[str] = []
    if extras.text_only:
        vision = spec.arch.vision
        modalities = vision.modalities if vision else ["image"]
        limits = ",".join(f'"{m}":0' for m in modalities)
        parts.append(f"--limit-mm-per-prompt '{{{limits}}}'")
    if extras.draft:
        tokens = extras.draft.tokens
        if extras.draft.mtp_layers:
            config = f'{{"method":"mtp","num_speculative_tokens":{tokens}}}'
        else:
            assert extras.draft.model is not None
            config = f'{{"model":"{extras.draft.model.spec.id}","num_speculative_tokens":{tokens}}}'
        parts.append(f"--speculative-config '{config}'")
    if extras.lora:
        parts.append(f"--enable-lora --max-loras {extras.lora.max_loras} --max-lora-rank {extras.lora.rank}")
    return parts

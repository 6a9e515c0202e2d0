"""The Request's fast checker (engine/constraints.py) and pydantic read the same limits the same way.

Request fields are checked by ``constraints.check`` on every start (pydantic is not imported there,
issue 14); pydantic validates the same annotations where a Request sits inside a stored model. For
each field and a corpus of values of the field's own kinds, both must accept the same values and
refuse the others with the same error type.
"""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from engine.constraints import Bounds, Invalid, Rule, check
from engine.notes import Note
from engine.request import _RULES, Request

HINTS = typing.get_type_hints(Request, include_extras=True)
CORPUS: list[Any] = [None, 0, 1, -1, 2, 16, 17, 40, 41, 64, 256, 257, 10**6, 10**6 + 1, 16 * 2**20, 16 * 2**20 + 1,
                     2**50 + 1, 0.0, 0.5, 1.0, 1.5, 2.0, -0.5, 4096.0, 4096.5, True, False, "", "x", "a" * 201,
                     "0.21", "0.21.1", "v0.21", "max", "fp8", "bf16", "auto", "cost", "speed", "us-east-1",
                     (), ("g6e",), ["g6e", "p5"], (1,)]  # fmt: skip
#: (wanted, given) where the checker is stricter than pydantic's lax mode, on purpose: no text read as a number
#: or a bool, no bool as a number, no number as a bool (flags and words are converted before they reach a Request,
#: and stored JSON keeps each value's own type)
STRICTER = {(int, bool), (float, bool), (bool, int), (bool, float), (int, str), (float, str), (bool, str)}


def _pydantic(field: str, value: Any) -> tuple[bool, str | None]:
    try:
        TypeAdapter(HINTS[field]).validate_python(value)
    except ValidationError as exc:
        return False, exc.errors()[0]["type"]
    return True, None


def _ours(rule: Rule, value: Any) -> tuple[bool, str | None]:
    _, found = check(rule, value)
    return found is None, found and found["type"]


def _typed_rules() -> list[Rule]:
    """Fields whose whole check is their annotation (the others have checks of their own, tested below)."""
    return [r for r in _RULES if r.name not in {"concurrency", "lora_rank", "region", "model_note"}]


@pytest.mark.parametrize("rule", _typed_rules(), ids=lambda r: r.name)
def test_the_checker_and_pydantic_agree_on_every_field(rule: Rule) -> None:
    compared = 0
    for value in CORPUS:
        theirs, ours = _pydantic(rule.name, value), _ours(rule, value)
        stricter = any(isinstance(value, given) and want in rule.kinds for want, given in STRICTER)
        stricter = stricter and not (bool in rule.kinds and isinstance(value, bool))
        if stricter and theirs[0] and not ours[0]:
            continue
        compared += 1
        assert ours[0] == theirs[0], (rule.name, value, ours, theirs)
        if not ours[0] and ours[1] not in {"int_type", "float_type", "bool_type", "string_type", "tuple_type",
                                           "literal_error"}:
            assert ours[1] == theirs[1], (rule.name, value, ours, theirs)  # the bound's error type, exactly
    assert compared >= len(CORPUS) - 12


def test_every_bound_is_exercised() -> None:
    """The corpus reaches both sides of each declared bound, so the agreement above means something."""
    for rule in _RULES:
        if rule.bounds is None or rule.bounds.pattern:
            continue
        kind = str if str in rule.kinds else int | float
        verdicts = {_ours(rule, v)[0] for v in CORPUS if isinstance(v, kind) and not isinstance(v, bool)}
        assert verdicts == {True, False}, rule.name


def test_a_request_refuses_what_pydantic_refuses_with_the_same_fields_and_types() -> None:
    class Stored(BaseModel):
        r: Request

    bad = {"model": "x", "tp": 0, "context_tokens": 2**30, "weights": "fp9", "vllm_version": "v1"}
    with pytest.raises(Invalid) as ours:
        Request.from_data(bad)
    with pytest.raises(ValidationError) as theirs:
        Stored.model_validate({"r": bad})
    mine = [(p["field"], p["type"]) for p in ours.value.problems]
    assert mine == [("weights", "literal_error"), ("context_tokens", "less_than_equal"), ("tp", "greater_than"),
                    ("vllm_version", "string_pattern_mismatch")]  # fmt: skip
    assert {(".".join(map(str, e["loc"][1:])), e["type"]) for e in theirs.value.errors()} == set(mine)


def test_a_stored_request_reads_back_through_pydantic_and_through_from_data() -> None:
    class Stored(BaseModel):
        r: Request

    asked = Request(model="llama-3.3-70b", weights="fp8", families=("g6e",), concurrency="max",
                    model_note=Note("bare_size", {"size": "70B"}))  # fmt: skip
    data = asked.as_data()
    assert Request.from_data(data) == asked
    assert Stored.model_validate({"r": data}).r == asked
    assert Request.from_data(asked.as_data(exclude_defaults=True)) == asked


def test_unknown_and_missing_keys_are_refused_as_pydantic_names_them() -> None:
    with pytest.raises(Invalid) as err:
        Request.from_data({"tp": 2, "colour": "red"})
    assert [(p["field"], p["type"]) for p in err.value.problems] == [("colour", "extra_forbidden"), ("model", "missing")]
    with pytest.raises(Invalid):
        Request(model="x").replace(colour="red")


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"concurrency": 0}, "concurrency_positive"),
        ({"concurrency": 10**6 + 1}, "concurrency_too_large"),
        ({"lora_rank": 24}, "lora_rank"),
        ({"region": "mars-1"}, "region_name"),
        ({"instance": "p5.48xlarge", "gpu": "h100"}, "instance_and_gpu"),
        ({"gpu": "l4", "gpus": 6, "tp": 4}, "tp_not_divisor"),
        ({"max_num_batched_tokens": 512}, "batched_below_seqs"),
    ],
)
def test_checks_beyond_the_annotations(fields: dict[str, Any], kind: str) -> None:
    with pytest.raises(Invalid) as err:
        Request(model="x", **fields)
    assert err.value.problems[0]["type"] == kind


def test_values_are_kept_as_pydantic_would_convert_them() -> None:
    r = Request(model="x", tp=2.0, cpu_offload_gb=4, families=["g6e"])  # type: ignore[arg-type]
    assert (r.tp, type(r.tp), r.cpu_offload_gb, type(r.cpu_offload_gb), r.families) == (2, int, 4.0, float, ("g6e",))
    assert r.replace(tp=4).tp == 4
    with pytest.raises(Invalid):  # NamedTuple's own _replace would skip the checks: it is the checked replace
        r._replace(tp=0)
    with pytest.raises(Invalid):  # and its _make too
        Request._make((*r[:-1], 7))  # lora_rank 7: not a rank vLLM accepts
    assert Request._make(r) == r


def test_bounds_speak_pydantics_error_types() -> None:
    assert Bounds(gt=0).problem(0)[0] == "greater_than"  # type: ignore[index]
    assert Bounds(ge=0).problem(-1)[0] == "greater_than_equal"  # type: ignore[index]
    assert Bounds(le=1).problem(2)[0] == "less_than_equal"  # type: ignore[index]
    assert Bounds(min_length=1).problem("")[0] == "string_too_short"  # type: ignore[index]
    assert Bounds(max_length=1).problem("ab")[0] == "string_too_long"  # type: ignore[index]
    assert Bounds(pattern=r"^\d$").problem("a")[0] == "string_pattern_mismatch"  # type: ignore[index]
    assert Bounds(gt=0, le=1).problem(1) is None

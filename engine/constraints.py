"""Field limits declared once, checked two ways: by pydantic and by a small checker on the CLI's hot path.

Why two: importing pydantic alone takes ~80 ms, two thirds of the start-up budget of a
`headroom plan` (issue 14). So the catalog's records and the Request are plain classes whose
annotations carry ``Bounds``; pydantic reads them where data files, Hub files and stored JSON
are validated (``Bounds.__get_pydantic_core_schema__``), and ``check`` reads the same metadata
for a Request built from flags or words. ``tests/unit/test_constraints.py`` checks that both
accept and refuse the same values, with the same error types, except where the checker is stricter
on purpose (no text read as a number, no bool as a number or the reverse: listed in that test).
"""

import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple


class Bounds(NamedTuple):
    """Limits of one field, as in pydantic's ``Field(gt=..., le=..., pattern=...)``."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None

    def limits(self) -> dict[str, Any]:
        return {name: value for name, value in zip(self._fields, self, strict=True) if value is not None}

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        """pydantic validates the annotated type with these limits (only where pydantic is imported)."""
        from pydantic import Field

        return handler(typing.Annotated[source, Field(**self.limits())])

    def problem(self, value: Any) -> tuple[str, dict[str, Any], str] | None:
        """(pydantic's error type, its context, its message) for the first limit ``value`` breaks."""
        if isinstance(value, str):
            if self.min_length is not None and len(value) < self.min_length:
                n = self.min_length
                return "string_too_short", {"min_length": n}, f"String should have at least {n} character{'s' * (n != 1)}"
            if self.max_length is not None and len(value) > self.max_length:
                n = self.max_length
                return "string_too_long", {"max_length": n}, f"String should have at most {n} character{'s' * (n != 1)}"
            if self.pattern is not None and not re.search(self.pattern, value):
                return "string_pattern_mismatch", {"pattern": self.pattern}, f"String should match pattern '{self.pattern}'"
            return None
        if self.gt is not None and not value > self.gt:
            return "greater_than", {"gt": self.gt}, f"Input should be greater than {self.gt}"
        if self.ge is not None and not value >= self.ge:
            return "greater_than_equal", {"ge": self.ge}, f"Input should be greater than or equal to {self.ge}"
        if self.le is not None and not value <= self.le:
            return "less_than_equal", {"le": self.le}, f"Input should be less than or equal to {self.le}"
        return None


class Rule(NamedTuple):
    """How ``check`` reads one field: the plain types it takes, its literals, and its bounds."""

    name: str
    kinds: tuple[type, ...]  # int, float, str, bool, tuple (of str), or a record type built from a mapping
    literals: tuple[Any, ...]
    nullable: bool
    bounds: Bounds | None
    required: bool


class Invalid(ValueError):
    """Values a Request refuses, as pydantic would list them: field, type, input, ctx, message.

    A ValueError, so pydantic (validating a stored Request inside its own models) reports it as
    its own validation error.
    """

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))


def problem(field: str, kind: str, value: Any, message: str, ctx: Mapping[str, Any] | None = None) -> dict[str, Any]:
    shown = value if isinstance(value, str | int | float) else None
    plain = {k: v for k, v in (ctx or {}).items() if isinstance(v, str | int | float)}
    return {"field": field, "type": kind, "input": shown, "ctx": plain, "message": message}


def rules_of(cls: type, defaults: Mapping[str, Any]) -> tuple[Rule, ...]:
    """The rules of a class's annotated fields (resolved once, where the class is defined)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    rules = []
    for name, hint in hints.items():
        if typing.get_origin(hint) is typing.ClassVar:
            continue
        bounds = None
        if typing.get_origin(hint) is typing.Annotated:
            hint, *meta = typing.get_args(hint)
            bounds = next((m for m in meta if isinstance(m, Bounds)), None)
        arms = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        kinds: list[type] = []
        literals: list[Any] = []
        for arm in arms:
            if typing.get_origin(arm) is Literal:
                literals.extend(typing.get_args(arm))
            elif arm is not types.NoneType:
                kinds.append(typing.get_origin(arm) or arm)
        rules.append(Rule(name, tuple(kinds), tuple(literals), types.NoneType in arms, bounds, name not in defaults))
    return tuple(rules)


_NAMES = {int: "a valid integer", float: "a valid number", str: "a valid string", bool: "a valid boolean",
          tuple: "a valid tuple of strings"}  # fmt: skip
_TYPES = {int: "int_type", float: "float_type", str: "string_type", bool: "bool_type", tuple: "tuple_type"}


def _coerced(kind: type, value: Any) -> tuple[bool, Any]:
    """pydantic's lax reading of the few plain types a Request holds."""
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if kind is tuple:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        return ok, tuple(value) if ok else value
    if kind is str:
        return isinstance(value, str), value
    if isinstance(value, kind):
        return True, value
    if isinstance(value, Mapping):  # a record stored as JSON (a Note): rebuilt from its fields
        try:
            return True, kind(**value)
        except TypeError:
            return False, value
    return False, value


def check(rule: Rule, value: Any) -> tuple[Any, dict[str, Any] | None]:
    """The value as the field keeps it, or the problem with it."""
    if value is None and rule.nullable:
        return None, None
    if rule.literals and not isinstance(value, bool) and value in rule.literals:
        return value, None
    for kind in rule.kinds:
        ok, kept = _coerced(kind, value)
        if ok:
            found = rule.bounds.problem(kept) if rule.bounds else None
            if found:
                return value, problem(rule.name, found[0], value, found[2], found[1])
            return kept, None
    if rule.literals and not rule.kinds:
        shown = [repr(v) for v in rule.literals]
        expected = " or ".join([", ".join(shown[:-1]), shown[-1]] if len(shown) > 1 else shown)
        return value, problem(rule.name, "literal_error", value, f"Input should be {expected}", {"expected": expected})
    kind = rule.kinds[0] if rule.kinds else str
    message = f"Input should be {_NAMES.get(kind, 'a valid ' + kind.__name__)}"
    return value, problem(rule.name, _TYPES.get(kind, "model_type"), value, message)

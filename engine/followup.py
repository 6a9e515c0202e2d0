"""How a follow-up in a thread changes the previous request: every merge rule, in one place.

- a field the follow-up names replaces the previous value; the rest carries over;
- a new pin (instance, GPU set, comparison, families) replaces the old pins;
- exclusions add up over a thread, and take their families out of an earlier "only";
- "compare with X" compares X with the previous answer's top pick;
- a new pin or family list ends a "why not X?".
"""

from __future__ import annotations

from engine.request import Request, RequestDelta

PINS = ("instance", "gpu", "gpus", "compare")


def with_pins_replaced(fields: dict[str, object]) -> dict[str, object]:
    """A message that pins hardware clears the other pins (and families, when the pin is concrete)."""
    fields = dict(fields)
    if any(k in fields for k in (*PINS, "families")):
        for key in PINS:
            fields.setdefault(key, () if key == "compare" else None)
        if any(fields.get(k) for k in PINS):
            fields.setdefault("families", ())
    if fields.get("gpu") and not fields.get("gpus"):
        fields["gpus"] = 1
    return fields


def merge(previous: Request, delta: RequestDelta, previous_top: str | None) -> Request:
    """The next request in a thread (delta.reset is the caller's: it starts a new request)."""
    changes = dict(delta.changes)
    compare = changes.get("compare")
    if isinstance(compare, tuple) and len(compare) == 1 and previous_top and previous_top != compare[0]:
        changes["compare"] = (previous_top, *compare)
    if "exclude_families" in changes:
        excluded = tuple(dict.fromkeys((*previous.exclude_families, *changes["exclude_families"])))  # type: ignore[misc]
        changes["exclude_families"] = excluded
        if "families" not in changes and previous.families:  # "exclude g6e" after "only g6e": g6e is no longer asked for
            changes["families"] = tuple(f for f in previous.families if f not in excluded)
    if any(k in changes for k in ("families", "compare", "instance", "gpu")):
        changes.setdefault("why_not", None)
    return previous.replace(**changes)

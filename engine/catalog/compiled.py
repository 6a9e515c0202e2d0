"""The catalog's compiled form: JSON that rebuilds a validated Catalog without validating it again.

Only for data ``compile_catalog`` produced from a validated catalog (``bot/catalog_cache.py`` keys
it by the data files' digest and this code's fingerprint), so a start-up skips YAML and pydantic: the
records are NamedTuples (``schema.py``) rebuilt field by field, nested records by their annotations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from engine.catalog.loader import Catalog, Efficiencies, VllmFile
from engine.catalog.resolve import build_model_index, seed_model_index
from engine.catalog.schema import GpuSpec, InstanceSpec, ModelSpec, RegionSpec
from engine.errors import CatalogError

COMPILED_FORMAT = 8  # 4: model index; 5: weight blocks; 6: regions (issue 12); 7: NamedTuple records; 8: positional
"""Version of ``compile_catalog``'s output; bump it whenever that layout changes."""


def _is_record(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields")


def _plain(value: Any) -> Any:
    """JSON-native: records as lists of every field in order (a third smaller and faster to read than objects), tuples
    as lists."""
    if _is_record(type(value)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value



def compile_catalog(catalog: Catalog) -> dict[str, Any]:
    """A JSON-native form of a validated catalog (json.dumps-able as is), for ``catalog_from_compiled``."""
    return {
        "format": COMPILED_FORMAT,
        "digest": catalog.digest,
        "models": [_plain(m) for m in catalog.models],
        "gpus": {key: _plain(g) for key, g in catalog.gpus.items()},
        "instances": {key: _plain(i) for key, i in catalog.instances.items()},
        "vllm": _plain(catalog.vllm),
        "efficiencies": _plain(catalog.efficiencies),
        "as_of": dict(catalog.as_of),
        "region": catalog.region,
        "sources": dict(catalog.sources),
        "bare_size_families": list(catalog.bare_size_families),
        "releases": {model: dict(by_dtype) for model, by_dtype in catalog.releases.items()},
        "weight_blocks": dict(catalog.weight_blocks),
        # the name index costs ~1,000 normalisations: worked out here once, not on every start-up
        "model_index": {key: catalog.models.index(spec) for key, spec in build_model_index(catalog).items()},
        "regions": {code: _plain(r) for code, r in catalog.regions.items()},
        "regions_refreshed": catalog.regions_refreshed,
    }


_Convert = Callable[[Any], Any]
_Memo = dict[Any, Any]  # annotation -> its converter (None: keep the value as it is), for one rebuild only
_BUILDING = object()
_AS_IS = (str, int, float, bool)  # JSON gives these back with the type validation gave them


def _converter(kind: Any, memo: _Memo) -> _Convert | None:
    """How to turn a JSON value into what validation gives for annotation ``kind``; worked out once per rebuild."""
    if memo.get(kind) is _BUILDING:  # no catalog model contains itself; supporting that is not worth it
        raise TypeError(f"cannot rebuild the self-referencing {kind!r} from the compiled catalog")
    if kind not in memo:
        memo[kind] = _BUILDING
        memo[kind] = _make_converter(kind, memo)
    return memo[kind]


def _bare(kind: Any) -> Any:
    """The type inside ``Annotated[type, Bounds(...)]`` (the bounds were checked when the catalog was validated)."""
    return get_args(kind)[0] if get_origin(kind) is Annotated else kind


def _make_converter(kind: Any, memo: _Memo) -> _Convert | None:
    kind = _bare(kind)
    if kind in _AS_IS:
        return None
    if _is_record(kind):
        return _record_converter(kind, memo)
    origin, args = get_origin(kind), get_args(kind)
    if origin is Literal:
        return None
    if origin is Union or origin is UnionType:
        arms = [_bare(a) for a in args if a is not NoneType]
        if all(a in _AS_IS or get_origin(a) is Literal for a in arms):
            return None
        if len(arms) == 1:  # X | None: callers keep None as it is
            return _converter(arms[0], memo)
    elif origin is list or (origin is tuple and args[1:] == (Ellipsis,)):
        item = _converter(args[0], memo)
        return origin if item is None else _each(origin, item)
    elif origin is dict and args[0] in (str, int):  # JSON object keys are strings: int keys come back as ints
        key, value = args[0], _converter(args[1], memo)
        return dict if key is str and value is None else _each_item(key, value)
    raise TypeError(f"cannot rebuild a {kind!r} from the compiled catalog")


def _each(container: type, item: _Convert) -> _Convert:
    return lambda values: container(None if v is None else item(v) for v in values)


def _each_item(key: type, value: _Convert | None) -> _Convert:
    if value is None:
        return lambda d: {key(k): v for k, v in d.items()}
    return lambda d: {key(k): None if v is None else value(v) for k, v in d.items()}


def _record_converter(kind: type, memo: _Memo) -> _Convert:
    """The record built from its fields in order (no validation), each converted by its annotation."""
    hints = kind.__annotations__  # evaluated (schema.py does not postpone annotations): no get_type_hints per start
    if any(isinstance(hint, str) for hint in hints.values()):
        hints = get_type_hints(kind)
    fields = [_converter(hint, memo) for hint in hints.values()]
    nested = [(at, convert) for at, convert in enumerate(fields) if convert is not None]
    count = len(fields)

    def convert(raw: list[Any]) -> Any:
        if type(raw) is not list or len(raw) != count:  # not this record as this code compiles it
            raise ValueError(f"a {kind.__name__} of {count} fields, compiled as {raw!r:.60}")
        if nested:
            raw = raw.copy()
            for at, field_convert in nested:
                value = raw[at]
                if value is not None:
                    raw[at] = field_convert(value)
        return kind._make(raw)  # type: ignore[attr-defined]

    return convert


def catalog_from_compiled(data: Mapping[str, Any]) -> Catalog:
    """Rebuild the catalog ``compile_catalog`` described, WITHOUT validating: only for data it produced.

    Raises CatalogError when the format version is unknown or the data does not have the compiled layout.
    """
    found = data.get("format") if isinstance(data, Mapping) else None
    if type(found) is not int or found != COMPILED_FORMAT:
        raise CatalogError(f"compiled catalog format {found!r} is not the supported {COMPILED_FORMAT}")
    memo: _Memo = {}
    kinds = (ModelSpec, GpuSpec, InstanceSpec, VllmFile, Efficiencies, RegionSpec)
    model, gpu, instance, vllm, efficiencies, region = (_record_converter(kind, memo) for kind in kinds)
    try:
        catalog = Catalog(
            models=tuple(model(m) for m in data["models"]),
            gpus={str(key): gpu(g) for key, g in data["gpus"].items()},
            instances={str(key): instance(i) for key, i in data["instances"].items()},
            vllm=vllm(data["vllm"]),
            efficiencies=efficiencies(data["efficiencies"]),
            as_of={str(k): str(v) for k, v in data["as_of"].items()},
            region=str(data["region"]),
            digest=str(data["digest"]),
            sources={str(k): str(v) for k, v in data["sources"].items()},
            bare_size_families=tuple(str(f) for f in data["bare_size_families"]),
            releases={str(m): {str(w): str(r) for w, r in d.items()} for m, d in data["releases"].items()},
            weight_blocks={str(repo): int(block) for repo, block in data["weight_blocks"].items()},
            regions={str(code): region(r) for code, r in data["regions"].items()},
            regions_refreshed=bool(data["regions_refreshed"]),
        )
        seed_model_index(catalog, {str(key): catalog.models[at] for key, at in data["model_index"].items()})
        return catalog
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatalogError(f"compiled catalog is malformed: {type(exc).__name__}: {exc}") from exc

"""The compiled catalog and its on-disk cache: the same catalog as full validation, never a stale one."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import bot.catalog_cache as catalog_cache
from bot.catalog_cache import cache_file, default_cache_dir, load_catalog_cached
from bot.catalog_files import load_catalog, read_sources
from engine.catalog.compiled import COMPILED_FORMAT, catalog_from_compiled, compile_catalog
from engine.catalog.loader import Catalog, build_catalog, sources_digest
from engine.catalog.schema import Arch, GpuSpec, InstanceSpec, Mla, ModelSpec, Moe, SlidingWindow
from engine.errors import CatalogError

MODEL_FILE = "models/meta_mistral.yaml"


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return read_sources()


@pytest.fixture(scope="module")
def validated(sources: dict[str, str]) -> Catalog:
    return build_catalog(sources)


@pytest.fixture(autouse=True)
def _no_real_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test writes to the developer's ~/.cache, whatever it calls."""
    monkeypatch.setenv("HEADROOM_CACHE_DIR", str(tmp_path / "default-cache"))


def _json_round_trip(catalog: Catalog) -> Catalog:
    return catalog_from_compiled(json.loads(json.dumps(compile_catalog(catalog))))


def _types(value: Any) -> Any:
    """The value with every leaf replaced by its type (dict keys too), to compare types, not just values."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a catalog record
        return (type(value), {name: _types(getattr(value, name)) for name in value._fields})
    if isinstance(value, dict):
        return (dict, {(type(k), k): _types(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return (type(value), [_types(v) for v in value])
    return type(value)


def _edited(sources: dict[str, str], name: str, old: str, new: str) -> dict[str, str]:
    assert old in sources[name], f"{name} no longer contains {old!r}: update the test"
    return {**sources, name: sources[name].replace(old, new, 1)}


def _cache_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("catalog-*.json"))


# --- the pure pieces --------------------------------------------------------------------


def test_sources_are_every_data_file_in_a_stable_order(sources: dict[str, str]) -> None:
    assert list(sources) == sorted(sources)
    assert {"gpus.yaml", "instances.yaml", "vllm.yaml", "h100_measurements.yaml", MODEL_FILE} <= set(sources)
    assert read_sources() == sources


def test_digest_changes_when_any_file_changes(sources: dict[str, str], validated: Catalog) -> None:
    digest = sources_digest(sources)
    assert len(digest) == 64 and validated.digest == digest[:12]
    assert sources_digest(dict(reversed(sources.items()))) == digest  # order of the mapping does not matter
    for name in sources:
        assert sources_digest({**sources, name: sources[name] + "\n"}) != digest, name
    renamed = {("x" + k if k == MODEL_FILE else k): v for k, v in sources.items()}
    assert sources_digest(renamed) != digest
    assert sources_digest({k: v for k, v in sources.items() if k != MODEL_FILE}) != digest


def test_load_catalog_validates_afresh_each_call(validated: Catalog) -> None:
    first, second = load_catalog(), load_catalog()
    assert first is not second  # no module-level cache: callers keep the catalog they load
    assert compile_catalog(first) == compile_catalog(second) == compile_catalog(validated)
    assert hash(first) != hash(second) and first != second  # hashed by identity, as before
    with pytest.raises(AttributeError):
        first.region = "eu-west-1"  # type: ignore[misc]


def test_a_replaced_catalog_keeps_every_other_field_and_owns_a_new_memo(validated: Catalog) -> None:
    changed = validated.replace(region="eu-west-1")
    assert changed.region == "eu-west-1" and validated.region != "eu-west-1"
    for name in Catalog.__slots__:
        if name not in ("region", "memo"):
            assert getattr(changed, name) is getattr(validated, name), name
    assert changed.memo is not validated.memo  # nothing derived from the old catalog's data is reused


def test_compiled_form_is_json_native(validated: Catalog) -> None:
    compiled = compile_catalog(validated)
    assert compiled["format"] == COMPILED_FORMAT and compiled["digest"] == validated.digest
    assert json.loads(json.dumps(compiled)) == compiled


def test_round_trip_gives_the_validated_catalog_field_by_field(validated: Catalog) -> None:
    rebuilt = _json_round_trip(validated)
    assert [m._asdict() for m in rebuilt.models] == [m._asdict() for m in validated.models]
    assert {k: g._asdict() for k, g in rebuilt.gpus.items()} == {k: g._asdict() for k, g in validated.gpus.items()}
    assert {k: i._asdict() for k, i in rebuilt.instances.items()} == {
        k: i._asdict() for k, i in validated.instances.items()
    }
    assert rebuilt.vllm._asdict() == validated.vllm._asdict()
    assert rebuilt.efficiencies._asdict() == validated.efficiencies._asdict()
    assert (rebuilt.as_of, rebuilt.digest, rebuilt.region, rebuilt.sources) == (
        validated.as_of,
        validated.digest,
        validated.region,
        validated.sources,
    )
    assert rebuilt.models == validated.models and rebuilt.vllm == validated.vllm and rebuilt.regions == validated.regions


def test_round_trip_keeps_the_types_of_nested_values(validated: Catalog) -> None:
    rebuilt = _json_round_trip(validated)
    assert type(rebuilt.models) is tuple
    for mine, theirs in zip(rebuilt.models, validated.models, strict=True):
        assert _types(mine) == _types(theirs), mine.id
    for key in validated.gpus:
        assert _types(rebuilt.gpus[key]) == _types(validated.gpus[key]), key
    for key in validated.instances:
        assert _types(rebuilt.instances[key]) == _types(validated.instances[key]), key
    assert _types(rebuilt.vllm) == _types(validated.vllm)
    assert _types(rebuilt.efficiencies) == _types(validated.efficiencies)

    assert all(isinstance(m, ModelSpec) and isinstance(m.arch, Arch) for m in rebuilt.models)
    assert all(isinstance(g, GpuSpec) for g in rebuilt.gpus.values())
    assert all(isinstance(i, InstanceSpec) for i in rebuilt.instances.values())
    nested = [(m.arch.moe, Moe) for m in rebuilt.models] + [(m.arch.mla, Mla) for m in rebuilt.models]
    nested += [(m.arch.sliding_window, SlidingWindow) for m in rebuilt.models]
    for kind in (Moe, Mla, SlidingWindow):
        found = [value for value, k in nested if k is kind and value is not None]
        assert found and all(isinstance(v, kind) for v in found), kind.__name__
    pcie = rebuilt.vllm.performance.pcie_gbps_by_gen
    assert pcie == validated.vllm.performance.pcie_gbps_by_gen
    assert pcie and all(type(k) is int and type(v) is float for k, v in pcie.items())


def test_derived_facts_agree(validated: Catalog) -> None:
    """What planning reads from the catalog is the same whichever way it was loaded."""
    rebuilt = _json_round_trip(validated)
    assert compile_catalog(rebuilt) == compile_catalog(validated)
    for version in ("0.17", "0.19", "0.21", "1.0"):
        assert rebuilt.vllm_version(version) == validated.vllm_version(version)
    for mine, theirs in zip(rebuilt.models, validated.models, strict=True):
        assert (mine.arch.layers, mine.arch.kv_heads, mine.arch.head_dim) == (
            theirs.arch.layers,
            theirs.arch.kv_heads,
            theirs.arch.head_dim,
        )
    assert rebuilt.instances["p5.48xlarge"].price_usd_per_hour == pytest.approx(55.04)
    assert rebuilt.gpu("h100-sxm").capability == validated.gpu("h100-sxm").capability == (9, 0)


@pytest.mark.parametrize("version", [None, 0, COMPILED_FORMAT + 1, "1", True])
def test_unknown_compiled_format_is_refused(validated: Catalog, version: object) -> None:
    compiled = compile_catalog(validated)
    if version is None:
        del compiled["format"]
    else:
        compiled["format"] = version
    with pytest.raises(CatalogError, match="format"):
        catalog_from_compiled(compiled)


@pytest.mark.parametrize(
    "change",
    [lambda arch: arch.append(3), lambda arch: arch.pop(), lambda arch: arch.clear()],
    ids=["a field more", "a field fewer", "no fields"],
)
def test_compiled_data_of_another_layout_is_refused(validated: Catalog, change: Callable[[list], None]) -> None:
    compiled = compile_catalog(validated)
    change(compiled["models"][0][ModelSpec._fields.index("arch")])
    with pytest.raises(CatalogError, match="malformed"):
        catalog_from_compiled(compiled)


# --- full validation is as strict as before ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "old", "new", "field"),
    [
        (MODEL_FILE, "layers: 80", "layers: -80", "arch.layers"),
        (MODEL_FILE, "layers: 80", "layers: eighty", "arch.layers"),
        ("instances.yaml", "price_usd_per_hour: 55.04", "price_usd_per_hour: -1", "price_usd_per_hour"),
        ("gpus.yaml", "vendor: nvidia", "vendor: nvidai", "vendor"),
    ],
)
def test_bad_data_names_the_file_and_field(sources: dict[str, str], name: str, old: str, new: str, field: str) -> None:
    with pytest.raises(CatalogError) as err:
        build_catalog(_edited(sources, name, old, new))
    message = str(err.value)
    assert message.startswith(f"catalog file {name.removeprefix('models/')} is invalid:")
    assert field in message


def test_broken_yaml_is_a_catalog_error(sources: dict[str, str]) -> None:
    with pytest.raises(CatalogError, match="vllm.yaml is not valid YAML"):
        build_catalog({**sources, "vllm.yaml": sources["vllm.yaml"] + "\n  - [unclosed\n"})


def test_a_missing_data_file_is_a_catalog_error(sources: dict[str, str]) -> None:
    with pytest.raises(CatalogError, match="gpus.yaml is missing"):
        build_catalog({k: v for k, v in sources.items() if k != "gpus.yaml"})


# --- the on-disk cache ------------------------------------------------------------------


def test_first_load_writes_one_file_and_the_second_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, validated: Catalog
) -> None:
    first = load_catalog_cached(tmp_path)
    assert _cache_files(tmp_path) == [Path(cache_file(tmp_path, sources_digest(read_sources()))).name]
    assert compile_catalog(first) == compile_catalog(validated)

    def no_validation(_: object) -> Catalog:
        raise AssertionError("validated although the cache was warm")

    monkeypatch.setattr(catalog_cache, "build_catalog", no_validation)
    second = load_catalog_cached(tmp_path)
    assert second is not first
    assert compile_catalog(second) == compile_catalog(validated)
    assert _types(second.models[0]) == _types(validated.models[0])
    assert len(_cache_files(tmp_path)) == 1


def test_a_changed_data_file_is_validated_and_cached_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources: dict[str, str], validated: Catalog
) -> None:
    load_catalog_cached(tmp_path)
    (old_file,) = _cache_files(tmp_path)
    changed = _edited(sources, "instances.yaml", "price_usd_per_hour: 55.04", "price_usd_per_hour: 56.04")
    monkeypatch.setattr(catalog_cache, "read_sources", lambda: changed)
    validations = []

    def counting(sources: dict[str, str]) -> Catalog:
        validations.append(sources)
        return build_catalog(sources)

    monkeypatch.setattr(catalog_cache, "build_catalog", counting)
    catalog = load_catalog_cached(tmp_path)
    assert validations == [changed]
    assert catalog.digest == sources_digest(changed)[:12] != validated.digest
    assert catalog.instances["p5.48xlarge"].price_usd_per_hour == pytest.approx(56.04)
    files = _cache_files(tmp_path)
    assert old_file in files and len(files) == 2  # the other version's file may stay (a few are kept)
    assert load_catalog_cached(tmp_path).instances["p5.48xlarge"].price_usd_per_hour == pytest.approx(56.04)
    assert len(validations) == 1  # the second load came from the new file


@pytest.mark.parametrize(("old", "new"), [("layers: 80", "layers: -80"), ("layers: 80", "layers: eighty")])
def test_a_broken_data_file_raises_what_full_validation_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources: dict[str, str], old: str, new: str
) -> None:
    load_catalog_cached(tmp_path)  # a warm cache of the good data must not hide the broken file
    broken = _edited(sources, MODEL_FILE, old, new)
    with pytest.raises(CatalogError) as expected:
        build_catalog(broken)
    monkeypatch.setattr(catalog_cache, "read_sources", lambda: broken)
    with pytest.raises(CatalogError) as err:
        load_catalog_cached(tmp_path)
    assert str(err.value) == str(expected.value)
    assert len(_cache_files(tmp_path)) == 1  # nothing cached for the broken data


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "",
        lambda text: "\x00\xff garbage",
        lambda text: json.dumps({"format": COMPILED_FORMAT + 1}),  # from a newer headroom
        lambda text: text.replace('"models":[[', '"models":[["a field more",', 1),
        lambda text: json.dumps([1, 2, 3]),
    ],
)
def test_a_corrupt_cache_file_falls_back_and_is_rewritten(tmp_path: Path, validated: Catalog, damage: Any) -> None:
    load_catalog_cached(tmp_path)
    (path,) = tmp_path.glob("catalog-*.json")
    good = path.read_text()
    assert damage(good) != good
    path.write_text(damage(good))
    catalog = load_catalog_cached(tmp_path)
    assert compile_catalog(catalog) == compile_catalog(validated)
    assert path.read_text() == good


def test_a_cache_that_cannot_be_written_is_no_error(tmp_path: Path, validated: Catalog) -> None:
    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("")
    catalog = load_catalog_cached(blocked)
    assert compile_catalog(catalog) == compile_catalog(validated)
    assert not list(tmp_path.glob("**/*.tmp"))


def test_only_a_few_old_files_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources: dict[str, str]
) -> None:
    for price in range(60, 60 + catalog_cache.KEEP_FILES + 3):
        changed = _edited(sources, "instances.yaml", "price_usd_per_hour: 55.04", f"price_usd_per_hour: {price}")
        monkeypatch.setattr(catalog_cache, "read_sources", lambda changed=changed: changed)
        load_catalog_cached(tmp_path)
        assert Path(cache_file(tmp_path, sources_digest(changed))).exists()
    assert len(_cache_files(tmp_path)) == catalog_cache.KEEP_FILES


def test_default_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEADROOM_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("HEADROOM_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "headroom"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "headroom"


def test_without_a_folder_the_environment_decides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEADROOM_CACHE_DIR", str(tmp_path / "env"))
    load_catalog_cached()
    assert len(_cache_files(tmp_path / "env")) == 1


def test_cache_trouble_is_logged_at_debug_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The CLI configures no logging: anything above debug would reach the user's terminal."""
    caplog.set_level(logging.DEBUG, logger="headroom.catalog_cache")
    load_catalog_cached(tmp_path)
    (path,) = tmp_path.glob("catalog-*.json")
    path.write_text("{")
    load_catalog_cached(tmp_path)
    assert any("unusable" in r.getMessage() for r in caplog.records)
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "headroom.catalog_cache")

"""Regions (issue 12): a region ranks only what EC2 offers there, at that region's prices, and says so."""

from __future__ import annotations

import json

import pytest

from bot.catalog_files import read_sources
from bot.cli import main
from engine.catalog.compiled import catalog_from_compiled, compile_catalog
from engine.catalog.loader import Catalog, build_catalog
from engine.errors import CatalogError
from engine.service import respond
from tests.support import VIEWS, words


def ask(catalog: Catalog, text: str, **flags: object):  # noqa: ANN201
    return respond(text, None, catalog, flags or None)


def test_sa_east_1_ranks_only_its_types_at_its_prices_and_says_so(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.1 8b bf16 8k in sa-east-1")
    region = catalog.regions["sa-east-1"]
    ranked = turn.plan.candidates
    assert ranked and all(c.instance_type in region.offered for c in ranked)
    assert not {c.family for c in ranked} & {"g6e", "g7e"}  # EC2 does not offer them in São Paulo
    for c in ranked:
        price = region.offered[c.instance_type]
        assert c.usd_per_hour == (pytest.approx(price * c.nodes) if price else None)
    top = turn.plan.top
    assert top.usd_per_hour != catalog.instances[top.instance_type].price_usd_per_hour  # not the us-east-1 price
    text = VIEWS.terminal(turn.plan)
    assert "sa-east-1 list price" in text and "ranked only the" in text and "South America (São Paulo)" in text
    assert not any(w.code == "region_prices" for w in turn.plan.warnings)


def test_no_region_keeps_the_us_east_1_catalog_as_before(catalog: Catalog) -> None:
    plan = ask(catalog, "llama 3.1 8b bf16 8k").plan
    assert plan.price_region == "us-east-1" and plan.catalog_as_of == catalog.as_of
    assert all(c.usd_per_hour == catalog.instances[c.instance_type].price_usd_per_hour for c in plan.candidates)
    assert not any(a.code == "region_offerings" for a in plan.assumptions)
    assert any(c.family == "p3" for c in plan.candidates)  # every catalog type, as before


@pytest.mark.parametrize(
    ("words_", "region"),
    [
        ("in frankfurt", "eu-central-1"),
        ("in tokyo", "ap-northeast-1"),
        ("in sao paulo", "sa-east-1"),
        ("in São Paulo", "sa-east-1"),
        ("virginia", "us-east-1"),
        ("in oregon", "us-west-2"),
        ("in ireland", "eu-west-1"),
        ("from the london region", "eu-west-2"),
    ],
)
def test_place_names_read_as_their_region(catalog: Catalog, words_: str, region: str) -> None:
    turn = ask(catalog, f"llama 3.1 8b {words_}")
    assert turn.kind == "answer" and turn.request.region == region and not turn.unread


def test_a_place_and_another_region_conflict(catalog: Catalog) -> None:
    turn = ask(catalog, "llama 3.1 8b in frankfurt eu-west-1")
    assert turn.kind == "error" and turn.error.code == "conflicting_values"


def test_an_unknown_region_is_refused_with_those_that_work(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "llama 3.1 8b in ap-east-2"]) == 2
    err = capsys.readouterr().err
    assert "no EC2 data for region 'ap-east-2'" in err and "sa-east-1" in err and "frankfurt" in err
    assert "Traceback" not in err
    assert main(["plan", "llama 3.1 8b", "--region", "xx-west-9"]) == 2


def test_cheapest_region_compares_regions_cheapest_first(catalog: Catalog) -> None:
    plan = ask(catalog, "cheapest region for llama 3.3 70b fp8 8k").plan
    assert len(plan.regions) == 5 and [p.usd_per_hour for p in plan.regions] == sorted(p.usd_per_hour for p in plan.regions)
    for pick in plan.regions:
        price = catalog.regions[pick.region].offered[pick.instance] if pick.region != "us-east-1" else None
        assert pick.usd_per_hour == (price or catalog.instances[pick.instance].price_usd_per_hour)
    # no region has a cheaper fitting type than its pick
    fitting = {c.instance_type for c in plan.candidates if c.feasible and c.nodes == 1}
    for pick in plan.regions[1:]:
        offered = catalog.regions[pick.region].offered
        assert all(offered[t] is None or offered[t] >= pick.usd_per_hour for t in fitting if t in offered)
    assert "Cheapest regions for this" in VIEWS.terminal(plan)
    assert len(ask(catalog, "llama 3.3 70b fp8 top 3 regions").plan.regions) == 3


def test_a_region_where_nothing_fits_says_which_regions_would(catalog: Catalog) -> None:
    plan = ask(catalog, "llama 3.1 405b bf16 in af-south-1").plan
    assert not any(c.feasible for c in plan.candidates)
    (said,) = [w for w in plan.warnings if w.code == "region_nothing_fits"]
    assert said.regions and all(r["instance"] in catalog.regions[r["region"]].offered for r in said.regions)
    assert "it fits in" in words(said)


def test_a_pinned_instance_not_offered_there_is_unpriced_and_said(catalog: Catalog) -> None:
    plan = ask(catalog, "llama 3.1 8b on g6e.xlarge in sa-east-1").plan
    (only,) = plan.candidates
    assert only.instance == "g6e.xlarge" and only.usd_per_hour is None
    (said,) = [w for w in plan.warnings if w.code == "not_offered_in_region"]
    assert "us-east-1" in said.regions and "does not offer g6e.xlarge in sa-east-1" in words(said)


def _with_spot(sources: dict[str, str]) -> Catalog:
    text = sources["regions.yaml"]
    marker = "- code: sa-east-1"
    head, tail = text.split(marker)
    tail = tail.replace("  spot: {}", "  spot:\n    g6.xlarge: 0.41\n    g5.xlarge: 0.52", 1)
    return build_catalog({**sources, "regions.yaml": head + marker + tail})


def test_spot_prices_show_with_the_interruption_caveat() -> None:
    spotty = _with_spot(read_sources())
    plan = ask(spotty, "llama 3.1 8b bf16 8k in sa-east-1").plan
    spot = {c.instance_type: c.usd_per_hour_spot for c in plan.candidates}
    assert spot["g6.xlarge"] == pytest.approx(0.41) and spot["g5.xlarge"] == pytest.approx(0.52)
    text = VIEWS.terminal(plan)
    assert "spot $/h*" in text and "two-minute warning" in text
    assert "spot $/h*" not in VIEWS.terminal(ask(spotty, "llama 3.1 8b bf16 8k in frankfurt").plan)


def test_regions_survive_the_compiled_round_trip() -> None:
    validated = _with_spot(read_sources())
    rebuilt = catalog_from_compiled(json.loads(json.dumps(compile_catalog(validated))))
    assert {k: r._asdict() for k, r in rebuilt.regions.items()} == {k: r._asdict() for k, r in validated.regions.items()}
    assert rebuilt.regions_refreshed is validated.regions_refreshed and rebuilt.as_of == validated.as_of
    assert type(rebuilt.regions["sa-east-1"].spot["g6.xlarge"]) is float


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("    g6.xlarge: ", "    g9.xlarge: ", "not in instances.yaml"),
        ("  spot: {}", "  spot:\n    g6.xlarge: -1.0", "must be positive"),
        ("  spot: {}", "  spot:\n    p5e.48xlarge: 3.0", "not offered there"),
        ("- code: af-south-1", "- code: Cape Town", "code"),
    ],
)
def test_a_bad_regions_file_is_refused(old: str, new: str, why: str) -> None:
    sources = read_sources()
    assert old in sources["regions.yaml"]
    with pytest.raises(CatalogError, match=why):
        build_catalog({**sources, "regions.yaml": sources["regions.yaml"].replace(old, new, 1)})


def test_slack_answers_carry_the_regions_and_the_spot_caveat(catalog: Catalog) -> None:
    from bot.blocks import SlackViews

    turn = ask(catalog, "cheapest 3 regions for llama 3.1 8b bf16 8k")
    message = SlackViews(VIEWS).answer(turn.plan, turn.request)
    (section,) = [b["text"]["text"] for b in message.blocks if "Cheapest regions" in b.get("text", {}).get("text", "")]
    assert section.count("\n• ") == 3 and f"{turn.plan.regions[0].instance} at $" in section
    spotty = ask(_with_spot(read_sources()), "llama 3.1 8b bf16 8k in sa-east-1")
    said = VIEWS.explanation(spotty.plan, bold=str, code=str)
    assert "Spot: $0.41/hour" in said and "two-minute warning" in said


def test_region_flag_takes_a_place_and_refuses_a_contradiction(catalog: Catalog) -> None:
    assert ask(catalog, "llama 3.1 8b", region="Frankfurt").plan.price_region == "eu-central-1"
    turn = ask(catalog, "llama 3.1 8b in tokyo", region="eu-west-1")
    assert turn.kind == "error" and turn.error.code == "conflicting_values"
    assert ask(catalog, "llama 3.1 8b in tokyo", region="ap-northeast-1").plan.price_region == "ap-northeast-1"


def test_readme_regions_example_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    command = '$ headroom plan "cheapest 3 regions for llama 3.1 8b bf16 8k"\n...\n'
    start = readme.index(command) + len(command)
    shown = readme[start : readme.index("```", start)].rstrip()
    assert main(["plan", "cheapest 3 regions for llama 3.1 8b bf16 8k"]) == 0
    assert shown in capsys.readouterr().out


def test_why_not_a_type_the_region_lacks_is_answered(catalog: Catalog) -> None:
    plan = ask(catalog, "llama 3.1 8b bf16 8k in sa-east-1 why not g6e.xlarge?").plan
    assert plan.why_not is not None and plan.why_not.instance == "g6e.xlarge"
    assert any(w.code == "not_offered_in_region" and w.instances == ["g6e.xlarge"] for w in plan.warnings)
    assert {c.instance_type for c in plan.candidates} - {"g6e.xlarge"} <= set(catalog.regions["sa-east-1"].offered)

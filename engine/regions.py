"""Where a plan is priced: the types EC2 offers in the region asked for, at that region's prices.

The catalog's home region (us-east-1, instances.yaml) keeps every catalog type at the catalog's prices,
as before; any other region ranks only the types its offerings list (data/regions.yaml, or a refreshed
copy) at its own prices. ``cheapest_regions`` compares regions for one plan's feasible candidates.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.catalog.loader import Catalog
from engine.catalog.schema import RegionSpec
from engine.errors import InvalidRequest
from engine.notes import Note, note
from engine.placement import Hardware
from engine.plan import Candidate, NotEvaluated, RegionPick


def region_data(catalog: Catalog, code: str) -> RegionSpec | None:
    """The region's offerings and prices; None for the catalog's home region (every type, catalog prices).

    Raises InvalidRequest("unknown_region") for a region the data does not cover, naming those it does.
    """
    if code == catalog.region or not catalog.regions:
        return None
    found = catalog.regions.get(code)
    if found is None:
        raise InvalidRequest("unknown_region", region=code, known=sorted(catalog.regions), places=_places(catalog))
    return found


#: regions whose first place name the refusal offers as examples
_EXAMPLE_PLACES = ("eu-central-1", "ap-northeast-1", "sa-east-1", "us-west-2", "eu-west-1", "us-east-1")


def _places(catalog: Catalog) -> list[str]:
    return [catalog.regions[c].places[0] for c in _EXAMPLE_PLACES if c in catalog.regions and catalog.regions[c].places]


def price_in(catalog: Catalog, code: str, instance_type: str) -> tuple[bool, float | None, float | None]:
    """(offered there, on-demand USD/hour, spot USD/hour) of one instance type in one region."""
    spec = catalog.regions.get(code)
    home = catalog.instances[instance_type].price_usd_per_hour if code == catalog.region else None
    if spec is None:
        return code == catalog.region, home, None
    if code == catalog.region:  # the home region: the catalog's own price, the region's spot price if refreshed
        return True, home, spec.spot.get(instance_type)
    return instance_type in spec.offered, spec.offered.get(instance_type), spec.spot.get(instance_type)


def localise(catalog: Catalog, code: str, options: Iterable[Hardware]) -> tuple[list[Hardware], list[Hardware]]:
    """(sets offered in the region, re-priced there; sets of types it does not offer)."""
    kept, elsewhere = [], []
    for hw in options:
        if hw.instance is None:
            kept.append(hw)
            continue
        offered, price, _ = price_in(catalog, code, hw.instance.name)
        if not offered:
            elsewhere.append(hw)
            continue
        total = price * hw.nodes if price else None
        kept.append(hw._replace(usd_per_hour=total, price_note=None if total else hw.price_note))
    return kept, elsewhere


def with_spot(catalog: Catalog, code: str, candidates: list[Candidate]) -> list[Candidate]:
    """The candidates with their spot prices where the region has one (only after a refresh)."""
    priced = []
    for c in candidates:
        spot = price_in(catalog, code, c.instance_type)[2] if c.instance_type else None
        priced.append(c._replace(usd_per_hour_spot=spot * c.nodes) if spot else c)
    return priced


def offering_note(catalog: Catalog, code: str, spec: RegionSpec, kept: int, elsewhere: list[Hardware]) -> Note:
    """What a regional plan ranked: only the types offered there, at its prices, and as of when."""
    skipped = sorted({hw.instance.family for hw in elsewhere if hw.instance})
    return note(
        "region_offerings",
        region=code,
        name=spec.name,
        ranked=kept,
        skipped=skipped,
        skipped_types=len(elsewhere),
        prices_as_of=catalog.as_of.get("region_prices", ""),
        offerings_as_of=catalog.as_of.get("region_offerings", ""),
        refreshed=catalog.regions_refreshed,
    )


def cheapest_regions(catalog: Catalog, candidates: list[Candidate], budget: float | None, limit: int) -> list[RegionPick]:
    """Per region, the cheapest feasible candidate it offers (within the budget), cheapest region first."""
    codes = sorted({catalog.region, *catalog.regions})
    picks = []
    for code in codes:
        best: RegionPick | None = None
        for c in candidates:
            if not (c.feasible and c.instance_type):
                continue
            offered, price, spot = price_in(catalog, code, c.instance_type)
            if not offered or not price:
                continue
            total = price * c.nodes
            if (budget and total > budget) or (best and best.usd_per_hour <= total):
                continue
            per_m = c.usd_per_million_tokens * total / c.usd_per_hour if c.usd_per_million_tokens and c.usd_per_hour else None
            name = catalog.regions[code].name if code in catalog.regions else code
            best = RegionPick(code, name, c.instance or c.instance_type, total, spot * c.nodes if spot else None, per_m)
        if best:
            picks.append(best)
    picks.sort(key=lambda p: (p.usd_per_hour, p.region))
    return picks[:limit]


def fitting_elsewhere(catalog: Catalog, candidates: list[Candidate], budget: float | None) -> list[dict[str, object]]:
    """For a region where nothing fits: up to three other regions with their cheapest fitting instance."""
    picks = cheapest_regions(catalog, candidates, budget, len(catalog.regions) + 1)
    return [{"region": p.region, "name": p.name, "instance": p.instance, "usd_per_hour": p.usd_per_hour} for p in picks[:3]]


def regional_options(
    catalog: Catalog, code: str, options: list[Hardware], pinned: bool, asked: str | None = None
) -> tuple[list[Hardware], list[Hardware], list[Note], list[Note]]:
    """(sets to rank, sets of types not offered there, warnings, assumptions) for a plan in region ``code``.

    A pinned instance (or the one a "why not" names) the region does not offer is still assessed, unpriced,
    with a warning naming the regions that do; an unpinned list keeps only what the region offers.
    """
    spec = region_data(catalog, code)
    if spec is None:
        return options, [], [], []
    kept, elsewhere = localise(catalog, code, options)
    warnings = []
    offered_count = len(kept)
    named = [hw for hw in elsewhere if pinned or (hw.instance and hw.instance.name == asked)]  # pins, "why not X"
    if named:
        names = sorted({hw.instance.name for hw in named if hw.instance})
        where = sorted(c for c, r in catalog.regions.items() if any(n in r.offered for n in names))
        warnings.append(note("not_offered_in_region", region=code, instances=names, regions=where))
        kept += [hw._replace(usd_per_hour=None, price_note=None) for hw in named]
        elsewhere = [hw for hw in elsewhere if hw not in named]
    said = [offering_note(catalog, code, spec, offered_count, elsewhere)] if offered_count else []  # pins only: warned
    return kept, elsewhere, warnings, said


def offered_only(catalog: Catalog, code: str, skipped: list[NotEvaluated]) -> list[NotEvaluated]:
    """The not-ranked lists (Neuron, AMD) cut to the types the region offers."""
    if region_data(catalog, code) is None:
        return skipped
    kept = []
    for item in skipped:
        names = tuple(n for n in item.instances if price_in(catalog, code, n)[0])
        if names:
            kept.append(item._replace(instances=names))
    return kept


def place_region(catalog: Catalog, text: str) -> str:
    """A --region value: a region code as given, or the region a place name stands for ("frankfurt")."""
    wanted = " ".join(text.lower().split())
    found = {place: code for code, spec in catalog.regions.items() for place in spec.places}
    return found.get(wanted, text.strip().lower())

"""`headroom catalog refresh`: per-region offerings, on-demand and spot prices from the AWS APIs.

Writes a regions.yaml of the shipped layout (bot/region_data.py) into the user's cache; the catalog
loader prefers it while it validates. AWS calls live here, never in engine/. Errors are HeadroomErrors
worded by templates/errors.j2; progress lines come from templates/refresh.j2.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.catalog.loader import Catalog
from engine.errors import HeadroomError

if TYPE_CHECKING:
    from bot.render import Views

#: the Pricing API's filters for the price a person pays for a plain Linux instance
PRICE_FILTERS = (
    ("operatingSystem", "Linux"),
    ("tenancy", "Shared"),
    ("preInstalledSw", "NA"),
    ("capacitystatus", "Used"),
    ("locationType", "AWS Region"),
)

Say = Callable[[str, dict[str, Any]], None]


@dataclass
class Clients:
    """The AWS clients one refresh uses. ``pricing``/``spot`` replace the session's (tests give stubbed ones)."""

    session: Any = None
    pricing_client: Any = None
    spot_client: Callable[[str], Any] | None = None
    _ec2: dict[str, Any] = field(default_factory=dict)

    def _session(self) -> Any:
        if self.session is None:
            import boto3

            self.session = boto3.Session()
        return self.session

    def check_credentials(self) -> None:
        if self.pricing_client is None and self._session().get_credentials() is None:
            raise HeadroomError("refresh_no_credentials")

    def pricing(self) -> Any:
        if self.pricing_client is None:  # the Price List API answers from us-east-1 for every region
            self.pricing_client = self._session().client("pricing", region_name="us-east-1")
        return self.pricing_client

    def ec2(self, region: str) -> Any:
        if region not in self._ec2:
            self._ec2[region] = self._session().client("ec2", region_name=region)
        return self._ec2[region]

    def spot(self, region: str) -> Any:
        return self.spot_client(region) if self.spot_client else self.ec2(region)


@dataclass
class Refreshed:
    """What a refresh found: regions.yaml rows, GPU types the catalog lacks, catalog specs the API contradicts."""

    regions: list[dict[str, Any]]
    new_gpu_types: list[str]
    disagreements: list[str]


def on_demand_prices(pricing: Any, types: Iterable[str], say: Say) -> dict[str, dict[str, float]]:
    """region -> type -> on-demand Linux USD/hour, from the Price List API (one query per type)."""
    found: dict[str, dict[str, float]] = {}
    names = sorted(types)
    for i, name in enumerate(names, 1):
        filters = [{"Type": "TERM_MATCH", "Field": "instanceType", "Value": name}]
        filters += [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in PRICE_FILTERS]
        for page in pricing.get_paginator("get_products").paginate(ServiceCode="AmazonEC2", Filters=filters):
            for text in page["PriceList"]:
                region, price = _on_demand(json.loads(text))
                if region and price:
                    found.setdefault(region, {})[name] = price
        if i % 10 == 0 or i == len(names):
            say("prices", {"done": i, "total": len(names)})
    return found


def _on_demand(product: dict[str, Any]) -> tuple[str | None, float | None]:
    region = product.get("product", {}).get("attributes", {}).get("regionCode")
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = float(dimension.get("pricePerUnit", {}).get("USD", 0) or 0)
            if usd > 0 and dimension.get("unit", "Hrs").startswith("Hr"):
                return region, usd
    return region, None


def offered_types(ec2: Any, types: Iterable[str]) -> set[str]:
    """Which of ``types`` EC2 offers in the client's region (DescribeInstanceTypeOfferings)."""
    wanted = sorted(types)
    found: set[str] = set()
    pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="region", Filters=[{"Name": "instance-type", "Values": wanted}]
    )
    for page in pages:
        found.update(o["InstanceType"] for o in page["InstanceTypeOfferings"])
    return found & set(wanted)


def spot_prices(ec2: Any, types: Iterable[str], now: dt.datetime) -> dict[str, float]:
    """The lowest current Linux spot price over the region's zones, per type."""
    wanted = sorted(types)
    if not wanted:
        return {}
    lowest: dict[str, float] = {}
    pages = ec2.get_paginator("describe_spot_price_history").paginate(
        InstanceTypes=wanted, ProductDescriptions=["Linux/UNIX"], StartTime=now
    )
    for page in pages:
        for row in page["SpotPriceHistory"]:
            price = float(row["SpotPrice"])
            if price > 0 and price < lowest.get(row["InstanceType"], float("inf")):
                lowest[row["InstanceType"]] = price
    return lowest


def accelerated_types(ec2: Any) -> dict[str, dict[str, Any]]:
    """Every instance type with GPUs or Neuron devices (DescribeInstanceTypes), by name."""
    found = {}
    for page in ec2.get_paginator("describe_instance_types").paginate():
        for info in page["InstanceTypes"]:
            if info.get("GpuInfo") or info.get("NeuronInfo") or info.get("InferenceAcceleratorInfo"):
                found[info["InstanceType"]] = info
    return found


def spec_disagreements(catalog: Catalog, described: dict[str, dict[str, Any]]) -> list[str]:
    """Catalog GPU count, GPU memory, vCPUs and RAM that DescribeInstanceTypes contradicts (type: field ours != API)."""
    found = []
    for name, inst in sorted(catalog.instances.items()):
        info = described.get(name)
        gpus = (info or {}).get("GpuInfo", {}).get("Gpus") or []
        if not info or not gpus:
            continue
        ours = {
            "gpu_count": inst.gpu_count if inst.gpu_fraction == 1.0 else 0,
            "memory_mib_per_gpu": inst.memory_mib_per_gpu,
            "vcpu": inst.vcpu,
            "ram_gib": inst.ram_gib,
        }
        theirs = {
            "gpu_count": sum(g.get("Count", 0) for g in gpus),
            "memory_mib_per_gpu": gpus[0].get("MemoryInfo", {}).get("SizeInMiB"),
            "vcpu": info.get("VCpuInfo", {}).get("DefaultVCpus"),
            "ram_gib": info.get("MemoryInfo", {}).get("SizeInMiB", 0) / 1024,
        }
        found += [f"{name}: {k} {ours[k]} != {theirs[k]}" for k in ours if ours[k] is not None and ours[k] != theirs[k]]
    return found


def refresh(catalog: Catalog, clients: Clients, say: Say, now: dt.datetime, regions: list[str] | None = None) -> Refreshed:
    """Ask AWS for what the shipped snapshot holds; raise HeadroomError (worded in errors.j2) when AWS refuses."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    clients.check_credentials()
    types = set(catalog.instances)
    try:
        home = clients.ec2(catalog.region)
        codes = regions or sorted(r["RegionName"] for r in home.describe_regions()["Regions"])
        say("regions", {"count": len(codes)})
        described = accelerated_types(home)
        prices = on_demand_prices(clients.pricing(), types, say)
        rows = []
        for code in codes:
            offered = offered_types(clients.ec2(code), types)
            spot = spot_prices(clients.spot(code), offered, now)
            known = catalog.regions.get(code)
            rows.append({
                "code": code,
                "name": known.name if known else code,
                "places": list(known.places) if known else [],
                "offered": {t: prices.get(code, {}).get(t) for t in offered},
                "spot": spot,
            })  # fmt: skip
            say("region", {"region": code, "offered": len(offered), "spot": len(spot)})
    except NoCredentialsError as exc:
        raise HeadroomError("refresh_no_credentials") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise HeadroomError("refresh_refused", aws_code=error.get("Code", "?"), message=error.get("Message", "")) from exc
    except BotoCoreError as exc:
        raise HeadroomError("refresh_failed", message=str(exc)) from exc
    new = sorted(set(described) - types)
    return Refreshed(rows, new, spec_disagreements(catalog, described))


def refreshed_text(result: Refreshed, today: str) -> str:
    """The refreshed regions.yaml's text (validated by the loader's own check before anything keeps it)."""
    from bot.region_data import regions_yaml

    sources = {
        "PRICING": f"AWS Price List API get_products (us-east-1 endpoint), on-demand Linux, Shared, NA, Used, read {today}",
        "OFFERINGS": f"EC2 DescribeInstanceTypeOfferings (location type region) per region, read {today}",
        "SPOT": f"EC2 DescribeSpotPriceHistory, Linux/UNIX, lowest current price over each region's zones, read {today}",
    }
    header = f"Written by `headroom catalog refresh` on {today}; the loader prefers it while it validates."
    as_of = {"prices": today, "offerings": today, "spot": today}
    return regions_yaml(as_of, sources, result.regions, refreshed=True, header=header)


def write_refreshed(result: Refreshed, cache_dir: Path, today: str) -> Path:
    """The refreshed regions.yaml in the cache folder, where the CLI's loader looks for it."""
    from bot.cache_files import write_atomically
    from bot.region_data import refreshed_path

    path = refreshed_path(cache_dir)
    write_atomically(path, refreshed_text(result, today))
    return path


def run_refresh(args: Any, views: Views, catalog: Catalog) -> int:
    """`headroom catalog refresh`: progress and the report on stderr (templates/refresh.j2); 0, or 2 on an error."""
    import sys

    from bot.catalog_cache import default_cache_dir

    words = views.macros("refresh.j2")
    say = lambda step, data: print(words.progress(step, data), file=sys.stderr)  # noqa: E731
    folder = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    now = dt.datetime.now(dt.UTC)
    try:
        result = refresh(catalog, Clients(), say, now, args.regions.split(",") if args.regions else None)
    except HeadroomError as exc:
        print(views.error_line(exc), file=sys.stderr)
        return 2
    path = write_refreshed(result, folder, now.date().isoformat())
    print(words.report(path, len(result.regions), result.new_gpu_types, result.disagreements), file=sys.stderr, end="")
    return 0

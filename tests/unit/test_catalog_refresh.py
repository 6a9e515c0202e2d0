"""`headroom catalog refresh` against real botocore clients: moto for EC2, Stubber for Pricing and spot history."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from bot.cache_files import write_atomically
from bot.catalog_cache import load_catalog_cached
from bot.catalog_refresh import PRICE_FILTERS, Clients, accelerated_types, refresh, spec_disagreements, write_refreshed
from bot.cli import main
from bot.region_data import refreshed_path
from engine.catalog.loader import Catalog
from engine.errors import HeadroomError
from engine.service import respond
from tests.support import VIEWS

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
REGIONS = ["sa-east-1", "us-east-1"]
#: what the stubbed Price List says: type -> region -> USD/hour
PRICES = {"g6.xlarge": {"us-east-1": 0.8048, "sa-east-1": 1.4}, "g5.xlarge": {"sa-east-1": 1.7}}
SPOT = {"g6.xlarge": [("sa-east-1a", "0.52"), ("sa-east-1b", "0.47")], "g5.xlarge": [("sa-east-1a", "0.61")]}
MOTO_TYPES = Path(moto.__file__).parent / "ec2/resources/instance_types.json.gz"


@pytest.fixture(autouse=True)
def _fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never the instance metadata service


def _product(name: str, region: str, usd: float) -> str:
    dimension = {"unit": "Hrs", "pricePerUnit": {"USD": f"{usd:.10f}"}}
    terms = {"OnDemand": {"T1": {"priceDimensions": {"T1.D1": dimension}}}}
    return json.dumps({"product": {"attributes": {"regionCode": region, "instanceType": name}}, "terms": terms})


def _pricing(catalog: Catalog) -> tuple[Any, Stubber]:
    client = boto3.client("pricing", region_name="us-east-1")
    stub = Stubber(client)
    for name in sorted(catalog.instances):
        filters = [{"Type": "TERM_MATCH", "Field": "instanceType", "Value": name}]
        filters += [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in PRICE_FILTERS]
        products = [_product(name, r, usd) for r, usd in PRICES.get(name, {}).items()]
        stub.add_response("get_products", {"PriceList": products}, {"ServiceCode": "AmazonEC2", "Filters": filters})
    return client, stub


def _spot(offered: dict[str, list[str]]) -> tuple[Any, list[Stubber]]:
    clients, stubs = {}, []
    for region in REGIONS:
        client = boto3.client("ec2", region_name=region)
        stub = Stubber(client)
        rows = [
            {"AvailabilityZone": zone, "InstanceType": name, "ProductDescription": "Linux/UNIX", "SpotPrice": price,
             "Timestamp": NOW}
            for name, zones in SPOT.items() for zone, price in zones if region == "sa-east-1"
        ]  # fmt: skip
        expected = {"InstanceTypes": offered[region], "ProductDescriptions": ["Linux/UNIX"], "StartTime": NOW}
        stub.add_response("describe_spot_price_history", {"SpotPriceHistory": rows}, expected)
        stub.activate()
        clients[region], stubs = client, [*stubs, stub]
    return clients.__getitem__, stubs


def _offered(catalog: Catalog) -> dict[str, list[str]]:
    found = {}
    for region in REGIONS:
        pages = boto3.client("ec2", region_name=region).get_paginator("describe_instance_type_offerings")
        rows = [o["InstanceType"] for p in pages.paginate(LocationType="region") for o in p["InstanceTypeOfferings"]]
        found[region] = sorted(set(rows) & set(catalog.instances))
    return found


@mock_aws
def test_refresh_writes_a_file_the_loader_prefers(catalog: Catalog, tmp_path: Path) -> None:
    pricing, pricing_stub = _pricing(catalog)
    spot, spot_stubs = _spot(_offered(catalog))
    said: list[tuple[str, dict[str, Any]]] = []
    with pricing_stub:
        result = refresh(catalog, Clients(pricing_client=pricing, spot_client=spot), lambda s, d: said.append((s, d)),
                         NOW, REGIONS)  # fmt: skip
    pricing_stub.assert_no_pending_responses()
    for stub in spot_stubs:
        stub.assert_no_pending_responses()
    assert [s for s, _ in said][:1] == ["regions"] and ("region", {"region": "sa-east-1", "offered": 40, "spot": 2}) in said
    assert result.disagreements == [] and "inf1.xlarge" in result.new_gpu_types  # moto lists inf1; the catalog does not
    path = write_refreshed(result, tmp_path, "2026-12-01")
    assert path == refreshed_path(tmp_path)

    loaded = load_catalog_cached(tmp_path)
    assert loaded.regions_refreshed and sorted(loaded.regions) == REGIONS
    sa = loaded.regions["sa-east-1"]
    assert sa.offered["g6.xlarge"] == 1.4 and sa.offered["g5.xlarge"] == 1.7 and sa.offered["p5.4xlarge"] is None
    assert sa.spot == {"g6.xlarge": 0.47, "g5.xlarge": 0.61}  # the lowest zone's price
    assert "g6e.xlarge" not in sa.offered and loaded.as_of["region_prices"] == "2026-12-01"

    plan = respond("llama 3.1 8b bf16 8k in sa-east-1", None, loaded).plan
    assert plan.top.instance == "g6.xlarge" and plan.top.usd_per_hour == 1.4 and plan.top.usd_per_hour_spot == 0.47
    text = VIEWS.terminal(plan)
    assert "refreshed from the AWS APIs" in text and "two-minute warning" in text and "as of 2026-12-01" in text


def test_a_refreshed_file_that_does_not_validate_is_left_aside(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = refreshed_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("as_of: {prices: '2026-12-01'}\nsources: {}\nregions: []\n")
    loaded = load_catalog_cached(tmp_path)
    assert not loaded.regions_refreshed and "sa-east-1" in loaded.regions  # the shipped snapshot
    assert "ignoring the refreshed" in capsys.readouterr().err

    path.write_bytes(b"as_of: {prices: '2026-12-01'}\n# caf\xe9, in Latin-1\n")  # not UTF-8
    loaded = load_catalog_cached(tmp_path)
    assert not loaded.regions_refreshed and "sa-east-1" in loaded.regions
    assert "ignoring the refreshed" in capsys.readouterr().err


def test_a_refreshed_file_is_written_through_its_own_temp_file(tmp_path: Path) -> None:
    path = refreshed_path(tmp_path)
    blocker = path.with_name(path.name + ".tmp")
    blocker.mkdir(parents=True)  # another writer's temp name (or a stale one): not in the way
    write_atomically(path, "as_of: {}\n")
    assert path.read_text(encoding="utf-8") == "as_of: {}\n"
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, blocker.name])  # no temp file left


def test_no_credentials_is_a_clear_message_and_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert main(["catalog", "refresh", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no AWS credentials found" in err and "Traceback" not in err
    assert not refreshed_path(tmp_path).exists()


@mock_aws
def test_aws_refusing_is_a_headroom_error(catalog: Catalog) -> None:
    pricing = boto3.client("pricing", region_name="us-east-1")
    with Stubber(pricing) as stub:
        stub.add_client_error("get_products", "AccessDeniedException", "not authorized to perform pricing:GetProducts")
        with pytest.raises(HeadroomError) as caught:
            refresh(catalog, Clients(pricing_client=pricing), lambda s, d: None, NOW, ["us-east-1"])
    assert caught.value.code == "refresh_refused" and "pricing:GetProducts" in VIEWS.error(caught.value)


def test_catalog_specs_agree_with_moto_describe_instance_types(catalog: Catalog) -> None:
    """GPU count, GPU memory, vCPUs and RAM of every catalog GPU type match moto's DescribeInstanceTypes dump."""
    dump = json.loads(gzip.open(MOTO_TYPES).read())
    with_gpus = {k: v for k, v in dump.items() if v.get("GpuInfo")}
    compared = sorted(set(with_gpus) & set(catalog.instances))
    assert len(compared) == 65
    assert spec_disagreements(catalog, with_gpus) == []
    # types the dump does not list (retired p3, g4ad, UltraServer-only p6e-gb200): reported, not compared
    assert sorted(set(catalog.instances) - set(dump)) == [
        "g4ad.16xlarge", "g4ad.2xlarge", "g4ad.4xlarge", "g4ad.8xlarge", "g4ad.xlarge",
        "p3.16xlarge", "p3.2xlarge", "p3.8xlarge", "p6e-gb200.36xlarge",
    ]  # fmt: skip
    # the check can fail: one wrong figure is reported
    broken = {**with_gpus, "g6e.12xlarge": {**with_gpus["g6e.12xlarge"], "VCpuInfo": {"DefaultVCpus": 47}}}
    assert spec_disagreements(catalog, broken) == ["g6e.12xlarge: vcpu 48 != 47"]


@mock_aws
def test_describe_instance_types_through_the_api_matches_the_dump(catalog: Catalog) -> None:
    described = accelerated_types(boto3.client("ec2", region_name="us-east-1"))
    assert {"g6e.12xlarge", "p5.48xlarge", "inf2.xlarge"} <= set(described)
    assert spec_disagreements(catalog, described) == []

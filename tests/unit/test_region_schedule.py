"""The bot's scheduled price refresh: AWS once per period, the store for every other worker, the catalog swapped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from bot.answer import Answerer
from bot.blocks import SlackViews
from bot.catalog_files import read_sources
from bot.catalog_refresh import Clients
from bot.hub import HubReader
from bot.region_schedule import STORE_KEY, refresh_cycle, run_schedule
from bot.render import Views
from bot.settings import Settings
from bot.state import BotState
from bot.store import MemoryStore, RedisStore
from engine.catalog.loader import Catalog
from engine.hub_model import hub_spec, with_models
from engine.request import Request
from engine.service import answer
from tests.hub.configs import CONFIGS, tensors
from tests.unit.test_catalog_refresh import NOW, REGIONS, _fake_aws, _offered, _pricing, _spot  # noqa: F401
from tests.unit.test_hub_model import files


def _answerer(catalog: Catalog, store: MemoryStore) -> Answerer:
    return Answerer(catalog, SlackViews(Views()), BotState(store, Settings()), f"rel:{catalog.digest}")


@mock_aws
def test_one_worker_asks_aws_the_others_read_the_store(catalog: Catalog) -> None:
    store = MemoryStore()
    first = _answerer(catalog, store)
    pricing, pricing_stub = _pricing(catalog)
    spot, _ = _spot(_offered(catalog))
    with pricing_stub:
        source = asyncio.run(refresh_cycle(first, store, "rel", Clients(pricing_client=pricing, spot_client=spot), 6, NOW,
                                           REGIONS))  # fmt: skip
    assert source == "aws" and asyncio.run(store.get(STORE_KEY))
    assert first.catalog.regions_refreshed and first.catalog is not catalog
    assert first.answers_key == f"rel:{first.catalog.digest}" != f"rel:{catalog.digest}"  # no old answer served
    top = answer(Request(model="llama-3.1-8b", weights="bf16", region="sa-east-1"), None, first.catalog).plan.top
    assert top.usd_per_hour == 1.4 and top.usd_per_hour_spot == 0.47  # the stubbed Price List and spot history

    silent = boto3.client("pricing", region_name="us-east-1")
    with Stubber(silent):  # any call to AWS would fail: the second worker must not make one
        second = _answerer(catalog, store)
        assert asyncio.run(refresh_cycle(second, store, "rel", Clients(pricing_client=silent), 6, NOW)) == "store"
    assert second.answers_key == first.answers_key


def test_without_credentials_the_schedule_stops_and_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture, catalog: Catalog) -> None:  # fmt: skip
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    answerer = _answerer(catalog, MemoryStore())
    asyncio.run(asyncio.wait_for(run_schedule(answerer, MemoryStore(), "rel", 6), timeout=10))
    assert answerer.catalog is catalog and "no AWS credentials" in caplog.text


def test_a_hub_model_read_after_a_refresh_is_added_to_the_refreshed_data(catalog: Catalog, tmp_path: Path) -> None:
    store = MemoryStore()
    answerer = Answerer(catalog, SlackViews(Views()), BotState(store, Settings()), f"rel:{catalog.digest}",
                        hub=HubReader(tmp_path))  # fmt: skip
    repo, config = "acme-ml/llama-refresh-test", CONFIGS["meta-llama/Llama-3.1-8B-Instruct"]
    read = files(repo, config, tensors(config))
    asyncio.run(answerer.state.save_hub_files(repo, read))  # another worker read it: no Hub needed here

    async def progress(_: str) -> None:
        raise AssertionError("the stored read is used")

    assert asyncio.run(answerer.learn(repo, progress)) is None
    asyncio.run(store.set(STORE_KEY, read_sources()["regions.yaml"] + "\n# refreshed\n", 600))
    assert asyncio.run(refresh_cycle(answerer, store, "rel", Clients(), 6, NOW)) == "store"
    refreshed = answerer.catalog
    assert answerer.base_catalog is refreshed and answerer.answers_key == f"rel:{refreshed.digest}"
    assert asyncio.run(answerer.learn(repo, progress)) is None
    assert answerer.catalog.digest == with_models(refreshed, [hub_spec(read)]).digest  # not the old data's


def test_a_cycle_that_fails_unexpectedly_is_logged_and_the_schedule_goes_on(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    answerer = _answerer(catalog, MemoryStore())
    down = RedisStore("redis://127.0.0.1:9/0", timeout_s=0.2)  # nothing listens there: redis' ConnectionError
    clients = Clients(pricing_client=boto3.client("pricing", region_name="us-east-1"))

    async def scheduled() -> None:
        try:
            await asyncio.wait_for(run_schedule(answerer, down, "rel", 6, clients), timeout=3)
        finally:
            await down.close()

    with pytest.raises(TimeoutError):  # still running (asleep until the next cycle) when the test stops it
        asyncio.run(scheduled())
    assert "scheduled price refresh failed unexpectedly" in caplog.text and answerer.catalog is catalog

"""The bot's scheduled price refresh (regions, issue 12): CATALOG_REFRESH_HOURS > 0 and AWS credentials.

Each cycle takes the regions.yaml another worker cached in the store (Redis), else asks AWS
(`bot.catalog_refresh.refresh`, on a worker thread) and caches the text for the period; the
catalog is rebuilt from it with full validation and swapped into the Answerer, whose answer-cache
key follows the catalog's digest, so no answer priced with the old data is served again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from bot.answer import Answerer
from bot.catalog_files import read_sources
from bot.catalog_refresh import Clients, refresh, refreshed_text
from bot.store import Store
from engine.catalog.loader import build_catalog
from engine.catalog.resolve import model_index
from engine.errors import CatalogError, HeadroomError

log = logging.getLogger("headroom.regions")

STORE_KEY = "regions:yaml"


async def refresh_cycle(answerer: Answerer, store: Store, release: str, clients: Clients, hours: float,
                        now: dt.datetime, regions: list[str] | None = None) -> str:  # fmt: skip
    """One cycle; says where the data came from ("store" or "aws"). Raises HeadroomError or CatalogError."""
    text = await store.get(STORE_KEY)
    source = "store"
    if text is None:
        said = lambda step, data: log.info("refresh %s %s", step, data)  # noqa: E731
        result = await asyncio.to_thread(refresh, answerer.catalog, clients, said, now, regions)
        text = refreshed_text(result, now.date().isoformat())
        await store.set(STORE_KEY, text, max(60, int(hours * 3600)))
        source = "aws"
    catalog = await asyncio.to_thread(build_catalog, {**read_sources(), "regions.yaml": text})
    model_index(catalog)
    answerer.use_catalog(catalog, f"{release}:{catalog.digest}")
    log.info("regions refreshed from %s: catalog %s, prices as of %s", source, catalog.digest,
             catalog.as_of.get("region_prices"))  # fmt: skip
    return source


async def run_schedule(answerer: Answerer, store: Store, release: str, hours: float, clients: Clients | None = None) -> None:
    """Refresh every ``hours`` until cancelled; a failed cycle keeps the catalog in use and is logged."""
    clients = clients or Clients()
    try:
        clients.check_credentials()
    except HeadroomError:
        log.warning("CATALOG_REFRESH_HOURS is set but no AWS credentials were found: prices stay the shipped snapshot")
        return
    while True:
        try:
            await refresh_cycle(answerer, store, release, clients, hours, dt.datetime.now(dt.UTC))
        except (HeadroomError, CatalogError) as exc:
            log.warning("scheduled price refresh failed, keeping the catalog in use: %s", exc)
        except Exception:  # anything else (Redis down, an AWS client's surprise): logged, and the schedule goes on
            log.exception("scheduled price refresh failed unexpectedly, keeping the catalog in use")
        await asyncio.sleep(max(60.0, hours * 3600))

"""Planning is safe on several threads: 200 mixed requests on 8 threads give the single-threaded answers."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from benchmarks.latency import requests
from bot.catalog_files import load_catalog
from bot.render import Views
from engine.ranking import plan
from engine.request import Request

VIEWS = Views()


def _mixed() -> list[Request]:
    base = requests()
    more = [r.replace(context_tokens=4096 * (1 + i % 8), concurrency=1 + i % 24) for i, r in enumerate(base)]
    pins = [r.replace(gpu_memory_utilization=0.8 + 0.01 * (i % 15)) for i, r in enumerate(base)]
    return (base + more + pins + base)[:200]


def _answer(catalog, request: Request) -> str:  # noqa: ANN001
    try:
        return json.dumps(VIEWS.plan_json(plan(request, catalog)), sort_keys=True)
    except Exception as exc:  # noqa: BLE001 - an error is an answer too, and must match
        return f"{type(exc).__name__}: {exc}"


def test_200_requests_on_8_threads_match_the_single_threaded_answers() -> None:
    batch = _mixed()
    assert len(batch) == 200
    alone = load_catalog()  # fresh catalogs: every memo starts empty, so the threads race to fill them
    expected = [_answer(alone, r) for r in batch]
    shared = load_catalog()
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda r: _answer(shared, r), batch))
    assert got == expected
    assert len({e for e in expected if not e.startswith("{")}) < 10  # mostly real plans, not errors

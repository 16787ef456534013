"""The API process tunes the garbage collector once started up, before it serves."""

import gc
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from payment_service.api import server
from payment_service.settings import Settings


@pytest.fixture
def collector_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_restored")
def test_serving_starts_with_the_start_up_heap_frozen_and_young_collections_rarer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    def serve(app: object, **_options: object) -> None:  # stands in for the server loop
        seen.update(app=app, threshold=gc.get_threshold(), frozen=gc.get_freeze_count())

    monkeypatch.setattr(uvicorn, "run", serve)
    monkeypatch.setattr(server, "configure_logging", lambda _settings: None)  # this process's logging stays
    server.serve_api(Settings(), host="127.0.0.1", port=8000)

    assert seen["app"] is not None
    assert seen["threshold"][0] == server.GC_YOUNG_THRESHOLD
    assert seen["threshold"][1:] == gc.get_threshold()[1:]
    # What the imports built (modules, classes, schemas) is left out of every later collection.
    assert seen["frozen"] > 50_000

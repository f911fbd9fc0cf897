"""The rich summary of ``sync --cache-load`` says why a cache load was skipped (the JSON
document and the run record always did): the cache column carries a mark, explained once
under the table, as a context's own skip reason is."""

from __future__ import annotations

from datetime import date

import pytest

from fulcrum_sync.domain import ContextResult, Grain, MetricContext, SyncRequest, SyncType, Window
from fulcrum_sync.domain.reports import ContextCacheResult
from fulcrum_sync.domain.results import SeriesResult, SyncRunResult
from fulcrum_sync.render.sync import print_sync_result
from fulcrum_sync.services.cache.destination import LOADING_ELSEWHERE

PERIOD = date(2025, 10, 1)


def _context(metric: str, cache: str, reason: str | None = None) -> ContextResult:
    res = ContextResult(
        MetricContext("acme", metric), Grain.DAY, PERIOD, f"k:{metric}", "succeeded"
    )
    res.base = SeriesResult(None, SyncType.INCREMENTAL, Window(PERIOD, PERIOD), inserted=1)
    res.cache = ContextCacheResult(
        f"acme::{metric}", Grain.DAY, f"cache.{metric}", cache, skip_reason=reason
    )
    return res


def test_a_skipped_cache_load_shows_its_reason(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    result = SyncRunResult("r", SyncRequest(grain=Grain.DAY, period=PERIOD))
    result.contexts += [
        _context("held", "skipped", LOADING_ELSEWHERE),
        _context("loaded", "succeeded"),
        _context("also_held", "skipped", LOADING_ELSEWHERE),
    ]
    print_sync_result(result)
    out = capsys.readouterr().out
    marked = [line for line in out.splitlines() if "held" in line and "skipped (a)" in line]
    assert len(marked) == 2, out
    assert out.count(LOADING_ELSEWHERE) == 1, out  # said once, under the table
    assert f"(a) {LOADING_ELSEWHERE}" in out, out
    loaded = next(line for line in out.splitlines() if "acme::loaded" in line)
    assert "(a)" not in loaded, out

"""The domain: grains and periods, contexts and run keys, requests and results, errors.

It imports nothing of fulcrum-sync but itself, so every layer can use it. The exception tree
(drawn in ``errors.py``)::

    FulcrumError
    ├── InputError          bad usage or configuration (exit 2)
    │   └── CatalogError    a catalog that does not validate (every problem listed)
    └── DependencyError     a dependency failed (exit 3 when nothing could be done)
        ├── SourceError     the semantic layer (Cube) or the demo generator
        ├── StoreError      the state database
        └── SinkError       the cache (Snowflake or local)
"""

from fulcrum_sync.domain.backfill import BackfillPlan, BackfillRequest, BackfillResult
from fulcrum_sync.domain.contexts import (
    MetricContext,
    PatternContext,
    pattern_run_key,
    sync_run_key,
)
from fulcrum_sync.domain.errors import (
    CatalogError,
    DependencyError,
    FulcrumError,
    InputError,
    SinkError,
    SourceError,
    StoreError,
)
from fulcrum_sync.domain.periods import (
    DEFAULT_LOOKBACK,
    GRAIN_ALIASES,
    Grain,
    SyncType,
    Window,
    check_history,
    check_not_after,
    check_period,
    compute_window,
    format_period,
    iter_periods,
    last_complete_period,
    parse_period,
    period_end,
    period_start,
    shift_period,
)
from fulcrum_sync.domain.reports import (
    CacheLoadResult,
    CatalogSaveResult,
    ContextCacheResult,
    ContextChanges,
    DiscoverResult,
    Freshness,
    MetricContextChange,
    StatusReport,
    UpgradeResult,
)
from fulcrum_sync.domain.results import (
    ContextResult,
    PatternRunResult,
    PatternsRequest,
    PatternsRunResult,
    SeriesResult,
    SkipCounts,
    SyncRequest,
    SyncRunResult,
)

__all__ = [
    "DEFAULT_LOOKBACK",
    "GRAIN_ALIASES",
    "BackfillPlan",
    "BackfillRequest",
    "BackfillResult",
    "CacheLoadResult",
    "CatalogError",
    "CatalogSaveResult",
    "ContextCacheResult",
    "ContextChanges",
    "ContextResult",
    "DependencyError",
    "DiscoverResult",
    "Freshness",
    "FulcrumError",
    "Grain",
    "InputError",
    "MetricContext",
    "MetricContextChange",
    "PatternContext",
    "PatternRunResult",
    "PatternsRequest",
    "PatternsRunResult",
    "SeriesResult",
    "SinkError",
    "SkipCounts",
    "SourceError",
    "StatusReport",
    "StoreError",
    "SyncRequest",
    "SyncRunResult",
    "SyncType",
    "UpgradeResult",
    "Window",
    "check_history",
    "check_not_after",
    "check_period",
    "compute_window",
    "format_period",
    "iter_periods",
    "last_complete_period",
    "parse_period",
    "pattern_run_key",
    "period_end",
    "period_start",
    "shift_period",
    "sync_run_key",
]

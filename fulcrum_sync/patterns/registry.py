"""The pattern registry and ``run_pattern``, which runs one pattern in isolation.

Settings: a spec's ``defaults`` are its settings model's defaults (None means "the grain's
default", resolved by the pattern and reported in its result). Per-tenant settings are
merged over them and validated by the model: an unknown key, a wrong type or a value out
of range raises ``InputError`` from ``PatternSpec.resolve_settings`` and
``validate_pattern_settings`` (call these at the edge, e.g. when a catalog is loaded), and
makes ``run_pattern`` return a *failed* outcome with ``error.type = "InputError"``, since
``run_pattern`` never raises.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, get_args

from pydantic import ValidationError

from fulcrum_sync.domain import Grain, InputError, Window, period_end, shift_period
from fulcrum_sync.domain.grains import coarser_grains
from fulcrum_sync.patterns import (
    data_quality,
    dimension_analysis,
    forecasting,
    historical_performance,
    performance_status,
)
from fulcrum_sync.patterns.base import (
    INSUFFICIENT_DATA,
    InsufficientDataError,
    OutcomeStatus,
    PatternInput,
    PatternOutcome,
    PatternResult,
    PatternSettings,
    horizons,
)

Need = Literal["base", "dimension", "targets", "forward_targets"]
NEEDS: frozenset[str] = frozenset(get_args(Need))
ALL_GRAINS = frozenset(Grain)

PatternFunc = Callable[..., PatternResult]
HistoryFunc = Callable[[Grain, dict[str, Any]], int]


@dataclass(frozen=True)
class PatternSpec:
    """One registered pattern: what it is, where it applies and what data it reads.

    :param lookback: periods of history read per grain with the default settings; use
        ``lookback_for`` / ``history_window`` to account for per-tenant settings.
    :param needs: ``base`` (the series), ``dimension`` (one dimension's series: the caller
        runs the pattern once per dimension), ``targets`` (targets over the history window),
        ``forward_targets`` (targets up to the end of the quarter containing the period).
    """

    name: str
    version: str
    func: PatternFunc
    settings_model: type[PatternSettings]
    grains: frozenset[Grain]
    needs: frozenset[str]
    lookback: Mapping[Grain, int]
    defaults: Mapping[str, Any]
    description: str = ""
    history: HistoryFunc | None = None

    def supports(self, grain: Grain | str) -> bool:
        """Return whether the pattern runs at ``grain``."""
        return Grain.parse(grain) in self.grains

    @property
    def needs_dimension(self) -> bool:
        return "dimension" in self.needs

    @property
    def needs_targets(self) -> bool:
        return bool(self.needs & {"targets", "forward_targets"})

    def resolve_settings(self, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Merge ``settings`` over the defaults and validate them; raise InputError if bad."""
        if settings is not None and not isinstance(settings, Mapping):
            raise InputError(f"settings for pattern {self.name!r} must be a mapping")
        try:
            model = self.settings_model.model_validate({**self.defaults, **(settings or {})})
        except ValidationError as exc:
            raise InputError(_settings_message(self, exc)) from None
        return model.model_dump()

    def lookback_for(self, grain: Grain | str, settings: Mapping[str, Any] | None = None) -> int:
        """Return the periods of history (the analysis period included) the pattern reads."""
        grain = Grain.parse(grain)
        if self.history is None or not settings:
            return self.lookback[grain]
        return self.history(grain, self.resolve_settings(settings))

    def history_window(
        self, grain: Grain | str, period: date, settings: Mapping[str, Any] | None = None
    ) -> Window:
        """Return the dates of base (and dimension) series to load for ``period``."""
        grain = Grain.parse(grain)
        periods = self.lookback_for(grain, settings)
        return Window(shift_period(grain, period, -(periods - 1)), period_end(grain, period))

    def targets_window(
        self, grain: Grain | str, period: date, settings: Mapping[str, Any] | None = None
    ) -> Window | None:
        """Return the dates of targets to load for ``period``, or None if none are needed."""
        grain = Grain.parse(grain)
        if "forward_targets" in self.needs:
            spans = horizons(grain, period).values()
            return Window(min(w.start for w in spans), max(w.end for w in spans))
        if "targets" in self.needs:
            return self.history_window(grain, period, settings)
        return None


def _spec(
    module: Any,
    func: PatternFunc,
    settings_model: type[PatternSettings],
    needs: set[str],
    description: str,
    grains: frozenset[Grain] = ALL_GRAINS,
) -> PatternSpec:
    assert needs <= NEEDS, needs
    defaults = settings_model().model_dump()
    history: HistoryFunc = module.required_history
    lookback = {grain: history(grain, defaults) for grain in Grain if grain in grains}
    return PatternSpec(
        name=module.NAME,
        version=module.VERSION,
        func=func,
        settings_model=settings_model,
        grains=grains,
        needs=frozenset(needs),
        lookback=lookback,
        defaults=defaults,
        description=description,
        history=history,
    )


_SPECS = [
    _spec(
        performance_status,
        performance_status.performance_status,
        performance_status.PerformanceStatusSettings,
        {"base", "targets"},
        "latest value vs the prior period and vs target: on track / off track",
    ),
    _spec(
        historical_performance,
        historical_performance.historical_performance,
        historical_performance.HistoricalPerformanceSettings,
        {"base"},
        "growth, acceleration, trend direction, streaks and records",
    ),
    _spec(
        dimension_analysis,
        dimension_analysis.dimension_analysis,
        dimension_analysis.DimensionAnalysisSettings,
        {"dimension"},
        "slice values and shares vs the prior period, movers, rank changes",
    ),
    _spec(
        forecasting,
        forecasting.forecasting,
        forecasting.ForecastingSettings,
        {"base", "forward_targets"},
        "week / month / quarter totals forecast with intervals and pacing",
        grains=frozenset(g for g in Grain if coarser_grains(g)),  # a span to forecast
    ),
    _spec(
        data_quality,
        data_quality.data_quality,
        data_quality.DataQualitySettings,
        {"base"},
        "gaps, zero or negative runs, anomalies vs a rolling median/MAD baseline",
    ),
]

REGISTRY: dict[str, PatternSpec] = {spec.name: spec for spec in _SPECS}


def list_patterns() -> list[PatternSpec]:
    """Return every registered pattern, by name."""
    return [REGISTRY[name] for name in sorted(REGISTRY)]


def get_pattern(name: str) -> PatternSpec:
    """Return the pattern called ``name``; raise InputError listing the known ones."""
    spec = REGISTRY.get(str(name).strip())
    if spec is None:
        known = ", ".join(sorted(REGISTRY))
        raise InputError(f"unknown pattern {name!r}: known patterns are {known}")
    return spec


def validate_pattern_settings(settings: Mapping[str, Mapping[str, Any]]) -> None:
    """Check a tenant's ``pattern_settings``; raise InputError on any unknown name or value."""
    for name, values in settings.items():
        get_pattern(name).resolve_settings(values)


def run_pattern(
    spec: PatternSpec, data: PatternInput, settings: Mapping[str, Any] | None = None
) -> PatternOutcome:
    """Run ``spec`` on ``data`` with ``settings`` merged over its defaults; never raise.

    Returns ``succeeded`` with the JSON-safe result; ``skipped`` with ``error.type =
    "insufficient_data"`` when the data is too short (or ``"unsupported_grain"``); and
    ``failed`` with the exception's class name and message for anything else, bad
    settings included.
    """
    started = time.perf_counter()
    window = data.data_window()
    common: dict[str, Any] = {
        "pattern": spec.name,
        "version": spec.version,
        "dimension": data.dimension,
        "window_start": window.start if window else None,
        "window_end": window.end if window else None,
    }

    def done(status: OutcomeStatus, **fields: Any) -> PatternOutcome:
        merged = {**common, **fields, "duration_seconds": time.perf_counter() - started}
        return PatternOutcome(status, **merged)

    if not spec.supports(data.grain):
        message = f"{spec.name} does not run at grain {data.grain.value}"
        return done("skipped", error={"type": "unsupported_grain", "message": message})
    try:
        resolved = spec.resolve_settings(settings)
    except InputError as exc:
        return done("failed", error=_error(exc), settings=dict(settings or {}))
    try:
        result = spec.func(data, **resolved)
        if not isinstance(result, PatternResult):
            raise TypeError(f"{spec.name} returned {type(result).__name__}, not a PatternResult")
        payload = result.to_json_dict()
    except InsufficientDataError as exc:
        error: dict[str, Any] = {"type": INSUFFICIENT_DATA, "message": str(exc)}
        if exc.needed is not None:
            error["needed"] = exc.needed
        if exc.available is not None:
            error["available"] = exc.available
        return done("skipped", error=error, settings=resolved)
    except Exception as exc:
        return done("failed", error=_error(exc), settings=resolved)
    return done(
        "succeeded",
        result=payload,
        settings=resolved,
        window_start=result.window_start,
        window_end=result.window_end,
    )


def _error(exc: BaseException) -> dict[str, Any]:
    """Describe ``exc`` for the result row: class, message and where it was raised."""
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc) or repr(exc)}
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        error["where"] = f"{os.path.basename(last.filename)}:{last.lineno} in {last.name}"
    return error


def _settings_message(spec: PatternSpec, exc: ValidationError) -> str:
    """Render a settings validation error as one readable line."""
    known = ", ".join(sorted(spec.defaults))
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "settings"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown setting {key!r}")
        else:
            problems.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return f"invalid settings for pattern {spec.name!r}: {'; '.join(problems)} (known: {known})"

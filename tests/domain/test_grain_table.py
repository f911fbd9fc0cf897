"""Every per-grain rule lives in domain/grains.py's table, and the table is whole.

A new grain fails here until its row, its lookback settings, its scheduled job (see
tests/deploy/test_deploy.py) and its demo metrics exist; a per-grain table or a branch on a grain
anywhere else in the package fails here too.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
from collections.abc import Mapping
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

import fulcrum_sync
from fulcrum_sync.config import Settings, lookback_setting
from fulcrum_sync.domain import (
    GRAINS,
    Grain,
    InputError,
    SyncType,
    format_period,
    iter_periods,
    parse_period,
    parse_span,
    period_end,
    period_label,
    period_start,
    shift_period,
)
from fulcrum_sync.patterns.registry import REGISTRY

PACKAGE = Path(fulcrum_sync.__file__).parent
TABLE = PACKAGE / "domain" / "grains.py"

# SPEC §3: the window's lookback, in periods of the grain.
SPEC_LOOKBACK = {
    "day": (365, 90),
    "week": (104, 24),
    "month": (60, 12),
    "quarter": (20, 4),
}


def test_every_grain_has_a_whole_row() -> None:
    assert list(GRAINS) == list(Grain), "one row per grain, finest first"
    for grain, rules in GRAINS.items():
        for f in dataclasses.fields(rules):
            value = getattr(rules, f.name)
            if f.name not in {"label_re", "from_label", "pandas_period"}:
                assert value is not None and value != "", (grain, f.name)
        assert (rules.label_re is None) == (rules.from_label is None), grain
        assert 1 <= rules.catch_up_periods <= rules.lookback_full, grain
        assert rules.lookback_incremental <= rules.lookback_full, grain
        assert len(rules.schedule.split()) == 5, grain


def test_the_lookbacks_are_the_spec_table() -> None:
    assert {g.value: (r.lookback_full, r.lookback_incremental) for g, r in GRAINS.items()} == (
        SPEC_LOOKBACK
    )
    assert Settings().lookback == {
        g: {SyncType.FULL: full, SyncType.INCREMENTAL: incr}
        for g, (full, incr) in ((Grain(k), v) for k, v in SPEC_LOOKBACK.items())
    }


def test_every_grain_has_its_lookback_settings() -> None:
    fields = Settings.model_fields
    for grain in Grain:
        for sync_type in SyncType:
            name = lookback_setting(grain, sync_type)
            assert name in fields, f"Settings lacks {name}"
            assert fields[name].default == GRAINS[grain].lookback(sync_type), name


@pytest.mark.parametrize("grain", list(Grain), ids=str)
def test_periods_tile_the_calendar_and_labels_round_trip(grain: Grain) -> None:
    starts = list(iter_periods(grain, date(2023, 12, 1), date(2026, 2, 1)))
    assert starts[0] <= date(2023, 12, 1) and period_end(grain, starts[-1]) >= date(2026, 2, 1)
    for start, following in pairwise(starts):
        assert period_end(grain, start) + timedelta(days=1) == following
        assert shift_period(grain, start, 1) == following
        assert shift_period(grain, following, -1) == start
    for start in starts:
        assert period_start(grain, start) == start
        assert period_start(grain, period_end(grain, start)) == start
        label = period_label(grain, start)
        assert parse_period(grain, label) == start
        assert parse_period(grain, period_end(grain, start).isoformat()) == start
        assert format_period(grain, start).startswith(label)
        assert parse_span(label) == (start, period_end(grain, start))


@pytest.mark.parametrize("alias", [a for r in GRAINS.values() for a in r.aliases])
def test_aliases_parse(alias: str) -> None:
    assert Grain.parse(alias.upper()) in GRAINS


def test_the_quarter_grain() -> None:
    q = Grain.parse("quarterly")
    assert q is Grain.QUARTER
    assert parse_period(q, "2025-Q3") == date(2025, 7, 1)
    assert parse_period(q, "2025-q3") == date(2025, 7, 1)
    assert parse_period(q, "2025-08-17") == date(2025, 7, 1)
    assert period_end(q, date(2025, 7, 1)) == date(2025, 9, 30)
    assert format_period(q, date(2025, 10, 1)) == "2025-Q4"
    assert shift_period(q, date(2025, 1, 1), -1) == date(2024, 10, 1)
    assert GRAINS[q].cube_granularity == "quarter"
    for bad in ("2025-Q0", "2025-Q5", "2025-07", "2025-W28"):
        with pytest.raises(InputError, match=f"invalid period '{bad}'"):
            parse_period(q, bad)
    with pytest.raises(InputError, match="expected a month \\(2025-07\\) or a date"):
        parse_period(Grain.MONTH, "2025-Q3")


def _package_modules() -> list[str]:
    return [
        m.name
        for m in pkgutil.walk_packages([str(PACKAGE)], "fulcrum_sync.")
        if ".migrations" not in m.name
    ]


def test_no_module_keeps_a_per_grain_table_that_misses_a_grain() -> None:
    tables = []
    for name in _package_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if isinstance(value, Mapping) and value and all(isinstance(k, Grain) for k in value):
                tables.append(f"{name}.{attr}")
                assert set(value) == set(Grain), f"{name}.{attr} misses a grain"
    assert "fulcrum_sync.domain.grains.GRAINS" in tables


def test_every_pattern_states_its_lookback_for_each_grain_it_supports() -> None:
    for spec in REGISTRY.values():
        assert set(spec.lookback) == set(spec.grains), spec.name
        assert spec.grains, spec.name


def _grain_branches(path: Path) -> list[str]:
    """``grain is Grain.DAY``, ``x == Grain.WEEK``, ``in (Grain.DAY, ...)`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                for sub in ast.walk(operand):
                    if (
                        isinstance(sub, ast.Attribute)
                        and isinstance(sub.value, ast.Name)
                        and sub.value.id == "Grain"
                        and sub.attr.isupper()
                    ):
                        found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
        if isinstance(node, ast.Dict) and node.keys:
            keys = [k for k in node.keys if k is not None]
            if keys and all(
                isinstance(k, ast.Attribute) and getattr(k.value, "id", "") == "Grain" for k in keys
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} (a per-grain dict)")
    return found


def test_no_code_outside_the_table_branches_on_a_grain() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != TABLE:
            found += _grain_branches(path)
    assert found == []


def test_the_demo_catalog_enables_every_grain() -> None:
    catalog = yaml.safe_load((PACKAGE / "data" / "demo_catalog.yaml").read_text())
    enabled = {
        g
        for tenant in catalog["tenants"]
        if tenant.get("active", True) and tenant.get("cache_enabled", True)
        for metric in tenant["metrics"]
        if metric.get("active", True)
        for g in metric.get("grains", ["day"])
    }
    assert enabled == {g.value for g in Grain}

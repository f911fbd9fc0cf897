"""The light table of pattern kinds agrees with the registry, and keys made from it are the
registry's keys."""

from __future__ import annotations

from datetime import date

from fulcrum_sync.catalog import ContextDef, demo_catalog
from fulcrum_sync.domain import Grain
from fulcrum_sync.domain.pattern_kinds import PATTERN_KINDS
from fulcrum_sync.patterns.registry import REGISTRY
from fulcrum_sync.services.jobs.keys import pattern_jobs, pattern_keys


def test_every_registered_pattern_has_its_kind() -> None:
    assert PATTERN_KINDS.keys() == REGISTRY.keys()
    for name, spec in REGISTRY.items():
        kind = PATTERN_KINDS[name]
        assert kind.needs_dimension == spec.needs_dimension, name
        assert kind.grains == spec.grains, name


def test_pattern_keys_are_the_keys_of_pattern_jobs() -> None:
    contexts = [
        ContextDef(tenant, metric, grain)
        for tenant in demo_catalog().tenants
        for metric in tenant.metrics
        for grain in metric.grains
    ]
    assert any(c.metric.patterns and c.metric.dimensions for c in contexts)
    for ctx in contexts:
        period = date(2025, 12, 1) if ctx.grain is not Grain.DAY else date(2025, 12, 3)
        jobs = [job[2] for job in pattern_jobs(ctx, period)]
        assert pattern_keys(ctx, period) == jobs, ctx.context.to_string()

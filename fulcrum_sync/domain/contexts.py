"""Contexts (``tenant::metric``, ``tenant::metric::pattern``) and the run keys that name work."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from fulcrum_sync.domain.errors import InputError
from fulcrum_sync.domain.periods import Grain

_PART_RE = re.compile(r"[A-Za-z0-9_.\-]+")


def _split_context(text: str, parts: int, example: str) -> list[str]:
    pieces = str(text).split("::")
    if len(pieces) != parts or not all(pieces):
        raise InputError(
            f"invalid context {text!r}: expected {parts} non-empty parts joined by '::' "
            f"(e.g. {example})"
        )
    for piece in pieces:
        if not _PART_RE.fullmatch(piece):
            raise InputError(
                f"invalid context {text!r}: part {piece!r} may hold only letters, digits, "
                "'_', '-' and '.'"
            )
    return pieces


@dataclass(frozen=True, slots=True, order=True)
class MetricContext:
    """One tenant's metric: ``acme::new_revenue``."""

    tenant: str
    metric: str

    @classmethod
    def from_string(cls, text: str) -> MetricContext:
        tenant, metric = _split_context(text, 2, "acme::new_revenue")
        return cls(tenant, metric)

    def to_string(self) -> str:
        return f"{self.tenant}::{self.metric}"

    def __str__(self) -> str:
        return self.to_string()


@dataclass(frozen=True, slots=True, order=True)
class PatternContext:
    """A metric context plus a pattern: ``acme::new_revenue::performance_status``."""

    tenant: str
    metric: str
    pattern: str

    @classmethod
    def from_string(cls, text: str) -> PatternContext:
        tenant, metric, pattern = _split_context(text, 3, "acme::new_revenue::performance_status")
        return cls(tenant, metric, pattern)

    @property
    def metric_context(self) -> MetricContext:
        return MetricContext(self.tenant, self.metric)

    def to_string(self) -> str:
        return f"{self.tenant}::{self.metric}::{self.pattern}"

    def __str__(self) -> str:
        return self.to_string()


def sync_run_key(grain: Grain, period: date, context: MetricContext) -> str:
    """Return ``sync:{grain}:{period}:{tenant}::{metric}``."""
    return f"sync:{grain.value}:{period.isoformat()}:{context.to_string()}"


def pattern_run_key(
    grain: Grain, period: date, context: PatternContext, dimension: str | None = None
) -> str:
    """Return ``pattern:{grain}:{period}:{tenant}::{metric}::{pattern}`` (``:{dimension}``)."""
    key = f"pattern:{grain.value}:{period.isoformat()}:{context.to_string()}"
    return f"{key}:{dimension}" if dimension else key

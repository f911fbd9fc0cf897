"""The source registry: each source's name, how to build it, and what it needs.

``FULCRUM_SYNC_SOURCE`` names an entry; the settings refuse a name not here. Code above
the sources asks an entry what it needs (``self_contained``) instead of comparing names.
Adding a source is one entry and one factory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from fulcrum_sync.domain import InputError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx

    from fulcrum_sync.catalog_connections import CubeConnection
    from fulcrum_sync.config import Settings
    from fulcrum_sync.sources.base import Source


Connections = Callable[[], "Mapping[str, CubeConnection | None]"]


class SourceFactory(Protocol):
    """Builds a source from the settings (see ``fulcrum_sync.sources.build_source``)."""

    def __call__(
        self,
        settings: Settings,
        *,
        http_client: httpx.Client | None,
        long_run: bool,
        stop: threading.Event | None,
        connections: Connections | None = None,
    ) -> Source: ...


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """One registered source.

    :param name: the value of ``FULCRUM_SYNC_SOURCE``.
    :param build: its factory.
    :param self_contained: needs no account nor production state database: an empty
        catalog is replaced by the built-in demo catalog, the default SQLite file is fine.
    :param description: one line for ``doctor`` and errors.
    """

    name: str
    build: Callable[..., Source]
    self_contained: bool
    description: str


def _demo(
    settings: Settings,
    *,
    http_client: httpx.Client | None = None,
    long_run: bool = False,
    stop: threading.Event | None = None,
    connections: Connections | None = None,
) -> Source:
    from fulcrum_sync.sources.demo import DemoSource

    return DemoSource(settings.demo_seed)


def _cube(
    settings: Settings,
    *,
    http_client: httpx.Client | None = None,
    long_run: bool = False,
    stop: threading.Event | None = None,
    connections: Connections | None = None,
) -> Source:
    """The settings' Cube; with tenants that bring their own (``connections``), a source
    that routes each tenant to its endpoint."""
    blocks = dict(connections()) if connections is not None else {}
    if any(block is not None for block in blocks.values()):
        from fulcrum_sync.sources.routing import TenantRoutedSource

        return TenantRoutedSource(
            settings, lambda: blocks, long_run=long_run, stop=stop, http_client=http_client
        )
    from fulcrum_sync.sources.cube_factory import build_cube_source

    return build_cube_source(settings, http_client=http_client, long_run=long_run, stop=stop)


_REGISTRY: dict[str, SourceEntry] = {
    entry.name: entry
    for entry in (
        SourceEntry("demo", _demo, True, "the built-in demo generator: no account needed"),
        SourceEntry("cube", _cube, False, "a Cube deployment's REST API"),
    )
}


def source_names() -> tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(_REGISTRY)


def source_entry(name: str) -> SourceEntry:
    """The entry of ``name``; InputError naming the registered ones when unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise InputError(f"unknown source {name!r}: expected one of {known}") from None


def register_source(entry: SourceEntry) -> None:
    """Add (or replace) a source: a plug-in, or a test's fake."""
    _REGISTRY[entry.name] = entry

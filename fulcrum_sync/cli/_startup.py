"""Garbage collection while the ``fulcrum-sync`` process starts.

Starting a command imports SQLAlchemy, pydantic, typer and our own modules: some 100,000
objects that live as long as the process. CPython's cyclic collector walks them again and
again while they are made (about 150 collections, a tenth of the CPU of a cron job that finds
everything done). So the script (:func:`fulcrum_sync.cli.main`) holds automatic collection
off until the command is set up (``cli._common.begin``: its imports done, its logging
configured); :func:`release` then moves everything alive into the permanent generation
(``gc.freeze``) and turns collection on again, so the work that follows collects its own
garbage as before without walking the imports each time.

Only the script holds it: a program or a test that calls the app in-process keeps its own
collector as it is (:func:`release` does nothing without :func:`hold`).
"""

from __future__ import annotations

import gc

_held: list[bool] = []  # [True] while hold() has automatic collection off


def hold() -> None:
    """Turn automatic collection off until :func:`release` (when it is on)."""
    if gc.isenabled() and not _held:
        gc.disable()
        _held.append(True)


def release() -> None:
    """Freeze what is alive and turn automatic collection on again, if :func:`hold` held it."""
    if _held:
        _held.clear()
        gc.freeze()
        gc.enable()

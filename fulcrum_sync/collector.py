"""Garbage collection while the ``fulcrum-sync`` process imports what lives as long as it.

Starting a command imports SQLAlchemy, pydantic, typer and our own modules: some 100,000
objects that live as long as the process. CPython's cyclic collector walks them again and
again while they are made (about 150 collections, a tenth of the CPU of a cron job that finds
everything done). So the script (:func:`fulcrum_sync.cli.main`) holds automatic collection
off until the command is set up (``cli._common.begin``: its imports done, its logging
configured); :func:`release` then moves everything alive into the permanent generation
(``gc.freeze``) and turns collection on again, so the work that follows collects its own
garbage as before without walking the imports each time. The young generation is then
collected every :data:`YOUNG_THRESHOLD` allocations, not 700: CPython 3.13's default. The
fetched rows of a sync live until their writes are done (a thousand objects and more per
context, walked by every collection they outlive): at 700 an incremental sync of 300
contexts ran ~740 collections (~60 ms of CPU), at 2,000 ~170 (~35 ms).

The first context a sync syncs loads the modules of the work (the store's writers, the
source's libraries: numpy for the demo source) inside :func:`importing` too
(:class:`FirstUse`, ``SyncRun.fetch``).

The patterns' libraries load later, when the first pattern runs: pandas with the patterns
(``services.patterns.step``), statsmodels' Holt-Winters with scipy at the first forecast
(``patterns.forecasting``): about a million more objects, over a second of CPU, paid once
per process. :func:`importing` holds collection off around such an import the same way and
freezes what it made (≈ 0.15 s of CPU per process with all five patterns on). What is alive
then besides them (a context's rows being analysed) is frozen too: it is still freed when
its last reference goes, only a reference cycle among it is never collected (once per
library: a block that loads no new module freezes nothing).

Only the script does this: a program or a test that calls the app in-process keeps its own
collector as it is (:func:`release` and :func:`importing` do nothing without :func:`hold`).
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: How many allocations (net of deallocations) start a collection of the youngest
#: generation once the command is set up (CPython 3.11's and 3.12's default is 700).
YOUNG_THRESHOLD = 2000

_held: list[bool] = []  # [True] while hold() has automatic collection off
_script: list[bool] = []  # [True] once hold() ran: this process is the fulcrum-sync script


class _Imports:
    """The :func:`importing` blocks open (in any thread), whether the first turned
    collection off, and how many modules were loaded then."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.held = False
        self.modules = 0


_imports = _Imports()


def hold() -> None:
    """Turn automatic collection off until :func:`release` (when it is on)."""
    _script[:] = [True]
    if gc.isenabled() and not _held:
        gc.disable()
        _held.append(True)


def release() -> None:
    """Freeze what is alive and turn automatic collection on again, if :func:`hold` held it,
    collecting the youngest generation every :data:`YOUNG_THRESHOLD` allocations (at least)."""
    if _held:
        _held.clear()
        gc.freeze()
        young, *older = gc.get_threshold()
        gc.set_threshold(max(young, YOUNG_THRESHOLD), *older)
        gc.enable()


@contextmanager
def importing() -> Iterator[None]:
    """Hold automatic collection off while the block imports libraries that live as long as
    the process; on leaving the last block open, freeze what is alive (when a module was
    loaded meanwhile: a block whose modules were loaded already freezes nothing, so it can
    stand where the import runs once per context) and turn it on again.

    Only in the script (after :func:`hold`) and when collection is on. Blocks may nest and
    be open in several threads at once (collection is the process's: the last one out turns
    it on again).
    """
    with _imports.lock:
        if _imports.open == 0:
            _imports.held = bool(_script) and gc.isenabled()
            _imports.modules = len(sys.modules)
            if _imports.held:
                gc.disable()
        _imports.open += 1
    try:
        yield
    finally:
        with _imports.lock:
            _imports.open -= 1
            if _imports.open == 0 and _imports.held:
                _imports.held = False
                if len(sys.modules) > _imports.modules:  # else nothing new lives on
                    gc.freeze()
                gc.enable()


class FirstUse:
    """``with first_use():`` around work whose first run loads the modules it needs (a sync's
    first context: the store's writers, the source's libraries): that first block is an
    :func:`importing` block; the next ones hold nothing, collection runs during their work."""

    def __init__(self) -> None:
        self.done = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if self.done:
            yield
            return
        with importing():
            yield
        self.done = True

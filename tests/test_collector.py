"""Garbage collection while the script imports what lives as long as it (issue 26): held off
while the command starts (``hold``/``release``) and while the patterns' libraries import
(``importing``), and only in the script."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from fulcrum_sync import collector


@pytest.fixture
def script() -> Iterator[None]:
    """Leave the test process's collector as it was, whatever a test did to it; unfreeze
    what a test froze."""
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    yield
    collector._held.clear()
    collector._script.clear()
    gc.unfreeze()
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


def _frozen(obj: object) -> bool:
    """Whether ``obj`` is in the permanent generation (``gc.get_objects`` leaves those out).
    Asked of one object, not by counting: frozen objects of earlier tests die meanwhile."""
    return not any(o is obj for o in gc.get_objects())


@pytest.mark.usefixtures("script")
def test_hold_turns_collection_off_until_release_freezes_and_turns_it_on() -> None:
    gc.enable()
    alive: list[object] = [[]]
    collector.hold()
    assert not gc.isenabled()
    collector.hold()  # a second hold changes nothing
    collector.release()
    assert gc.isenabled()
    assert _frozen(alive)  # what lived at release is in the permanent generation


@pytest.mark.usefixtures("script")
def test_after_release_the_youngest_generation_is_collected_every_2000_allocations() -> None:
    """CPython 3.13's default; at 3.11's 700 the rows of each context of a sync, alive until
    its writes, were walked by ~2 collections per context."""
    gc.set_threshold(700, 10, 10)
    collector.hold()
    collector.release()
    assert gc.get_threshold() == (2000, 10, 10)
    gc.set_threshold(5000, 10, 10)  # a larger one (set by whoever runs the script) stays
    collector.hold()
    collector.release()
    assert gc.get_threshold() == (5000, 10, 10)


@pytest.mark.usefixtures("script")
def test_release_without_hold_leaves_the_collector_alone() -> None:
    alive: list[object] = [[]]
    gc.set_threshold(700, 10, 10)
    gc.disable()  # a program that runs the app in-process chose this
    collector.release()
    assert not gc.isenabled()
    gc.enable()
    collector.release()
    assert gc.isenabled()
    assert not _frozen(alive)
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.usefixtures("script")
def test_importing_in_the_script_holds_collection_until_the_last_block_ends() -> None:
    gc.enable()
    collector.hold()
    collector.release()
    made = []
    try:
        with collector.importing():
            assert not gc.isenabled()
            with collector.importing():  # nested: the outer block still holds it
                made.append([[] for _ in range(100)])
                sys.modules["tests_collector_loaded"] = types.ModuleType("loaded")  # an import
            assert not gc.isenabled()
    finally:
        del sys.modules["tests_collector_loaded"]
    assert gc.isenabled()
    assert _frozen(made[0]) and _frozen(made[0][-1])  # what the block made is frozen


@pytest.mark.usefixtures("script")
def test_a_block_that_loads_no_module_freezes_nothing() -> None:
    """Where the import runs once per context (PatternStep.run): from the second on, the
    modules are loaded already and the context's objects stay collectable."""
    gc.enable()
    collector.hold()
    collector.release()
    with collector.importing():
        assert not gc.isenabled()
        import json  # noqa: F401  (loaded already: nothing new)

        made: list[object] = [[]]
    assert gc.isenabled()
    assert not _frozen(made)


@pytest.mark.usefixtures("script")
def test_first_use_holds_and_freezes_its_first_block_only() -> None:
    """A sync's first context loads the modules of the work (numpy for the demo source)."""
    gc.enable()
    collector.hold()
    collector.release()
    first_use = collector.FirstUse()
    try:
        with first_use():
            assert not gc.isenabled()
            made: list[object] = [[]]
            sys.modules["tests_collector_first_use"] = types.ModuleType("loaded")
    finally:
        del sys.modules["tests_collector_first_use"]
    assert gc.isenabled() and _frozen(made)
    with first_use():
        assert gc.isenabled()  # the work of the next ones collects as usual
        later: list[object] = [[]]
    assert not _frozen(later)


@pytest.mark.usefixtures("script")
def test_importing_blocks_of_two_threads_turn_collection_on_after_the_last() -> None:
    gc.enable()
    collector.hold()
    collector.release()
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with collector.importing():
            inside.set()
            leave.wait(timeout=60)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert inside.wait(timeout=60)
        with collector.importing():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the other thread's block is still open
    finally:
        leave.set()
        thread.join(timeout=60)
    assert gc.isenabled()


@pytest.mark.usefixtures("script")
@pytest.mark.parametrize("state", ["in-process", "held"])
def test_importing_leaves_the_collector_alone_outside_the_script_or_while_held(
    state: str,
) -> None:
    gc.enable()
    if state == "held":
        collector.hold()  # the command is still starting: its hold covers the import
    enabled = gc.isenabled()
    with collector.importing():
        assert gc.isenabled() is enabled
        made: list[object] = [[]]
    assert gc.isenabled() is enabled
    assert not _frozen(made)


# A fresh interpreter runs the script's main() with every collection's stack examined: does
# one run while pandas, scipy or statsmodels execute a module's body (an import)?
_WATCH = """
import gc, json, os, sys
LIBRARIES = tuple(os.environ["WATCHED_LIBRARIES"].split(","))
during = []
def watch(phase, info):
    frame = sys._getframe().f_back if phase == "start" else None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "<module>" and any(p in code.co_filename for p in LIBRARIES):
            during.append(code.co_filename)
            break
        frame = frame.f_back
gc.callbacks.append(watch)
sys.argv = ["fulcrum-sync", *sys.argv[1:]]
from fulcrum_sync.cli import main
try:
    main()
finally:
    print(json.dumps({"during": during, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _watched_sync(tmp_path: Path, libraries: str, *flags: str) -> dict[str, list[str]]:
    """Run ``sync --grain day --json *flags`` through ``_WATCH``: the modules loaded, and
    the module bodies of ``libraries`` (comma-separated path parts) a collection ran in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_SYNC_")}
    env["FULCRUM_SYNC_DATABASE_URL"] = f"sqlite:///{tmp_path / 'state.db'}"
    env["WATCHED_LIBRARIES"] = libraries
    ran = subprocess.run(
        [sys.executable, "-c", _WATCH, "sync", "--grain", "day", "--json", *flags],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    seen: dict[str, list[str]] = json.loads(ran.stderr.strip().splitlines()[-1])
    return seen


@pytest.mark.slow
def test_a_sync_imports_the_patterns_libraries_without_collecting(tmp_path: Path) -> None:
    seen = _watched_sync(tmp_path, "/pandas/,/scipy/,/statsmodels/")
    assert {"pandas", "scipy.stats", "statsmodels.tsa.holtwinters"} <= set(seen["modules"])
    assert seen["during"] == [], f"collections while importing: {seen['during'][:5]}"


@pytest.mark.slow
def test_a_sync_loads_what_its_first_context_needs_without_collecting(tmp_path: Path) -> None:
    """The demo source imports numpy when the first context fetches (a run that finds every
    context done never does): held and frozen like the command's own imports."""
    seen = _watched_sync(tmp_path, "/numpy/", "--no-patterns")
    assert "numpy" in seen["modules"]
    assert seen["during"] == [], f"collections while importing: {seen['during'][:5]}"

"""Forecasting imports scipy without its decorators rewriting docstrings (issue 26): the same
functions, capabilities and signatures, each docstring as its source wrote it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from fulcrum_sync.patterns.scipy_notes import notes_skipped

NOTE = "Array API Standard Support"  # the heading of xp_capabilities' note
MATRIX = "np.matrix`` inputs"  # in the note _axis_nan_policy adds (scipy.stats.skew's)

# A fresh interpreter imports scipy.stats (with the notes skipped or not) and reports the
# decorated functions of scipy.stats and how many docstrings carry the note.
_IMPORT = """
import inspect, json, sys
from scipy._lib import _array_api, _docscrape
from fulcrum_sync.patterns.scipy_notes import notes_skipped
skip = sys.argv[1] == "skip"
applied = None
parser = _docscrape.FunctionDoc
if skip:
    with notes_skipped():
        applied = _array_api.FunctionDoc is not parser
        import scipy.stats
else:
    import scipy.stats
table = [
    f for f in _array_api.xp_capabilities_table
    if str(getattr(f, "__module__", "")).startswith("scipy.stats")
]
theirs = [
    n for n, m in list(sys.modules.items())
    if n.startswith("scipy.") and vars(m).get("FunctionDoc") not in (None, parser)
]
print(json.dumps({
    "applied": applied,
    "restored": not theirs,
    "skew": MATRIX in scipy.stats.skew.__doc__,
    "signature": "nan_policy" in str(inspect.signature(scipy.stats.skew)),
    "decorated": len(table),
    "noted": sum(1 for f in table if NOTE in (f.__doc__ or "")),
    "documented": sum(1 for f in table if (f.__doc__ or "").strip()),
}))
""".replace("NOTE", repr(NOTE)).replace("MATRIX", repr(MATRIX))


def _import_stats(mode: str) -> dict[str, Any]:
    ran = subprocess.run(
        [sys.executable, "-c", _IMPORT, mode], capture_output=True, text=True, timeout=600
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    out: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.slow
def test_scipy_stats_imports_with_its_capabilities_and_the_docstrings_unchanged() -> None:
    skipped = _import_stats("skip")
    assert skipped["applied"] is True, "this scipy's decorators no longer read FunctionDoc"
    assert skipped["restored"] is True  # every module names scipy's parser again
    assert skipped["skew"] is False and skipped["signature"] is True
    assert isinstance(skipped["decorated"], int) and skipped["decorated"] > 50
    assert skipped["noted"] == 0
    assert skipped["documented"] > 50  # each keeps its own docstring

    written = _import_stats("write")  # as scipy does by itself: the note in each docstring
    assert written["decorated"] == skipped["decorated"]
    assert written["noted"] == written["decorated"]
    assert written["skew"] is True and written["signature"] is True


def test_another_scipy_layout_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy._lib import _array_api

    def own_parser(func: object) -> object:  # not scipy's FunctionDoc: a layout not known
        return func

    monkeypatch.setattr(_array_api, "FunctionDoc", own_parser)
    with notes_skipped():
        assert _array_api.FunctionDoc is own_parser
    assert _array_api.FunctionDoc is own_parser

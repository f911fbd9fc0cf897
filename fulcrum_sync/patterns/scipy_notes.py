"""Import scipy without its decorators rewriting ~800 docstrings (issue 26).

scipy 1.17 decorates many functions with notes for their docstrings, written as the module
defining them is imported: each decorator parses the function's docstring with scipy's
numpydoc parser (``scipy._lib._docscrape.FunctionDoc``), adds its text and writes the
docstring back. ``xp_capabilities`` (``_lib/_array_api.py``) appends a table of the array
libraries supported to ~650 functions; ``_axis_nan_policy`` (scipy.stats), ``_util`` and
``deprecation`` document the parameters they add or deprecate. Importing statsmodels'
Holt-Winters parses ~800 docstrings so: about 0.3 s of CPU, a third of that import, paid by
every process whose patterns forecast, for docstrings no job reads.

:func:`notes_skipped` hands those decorators, while the block imports, a parser that parses
nothing and gives each docstring back as its source wrote it; the decorators do everything
else as before (``xp_capabilities`` still fills its capabilities table, the others still set
their signatures). It changes no function, only the text of some docstrings. scipy's layout
is checked first: when it is not the one expected, the block runs as it would have. After
the block every module names scipy's parser again.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def notes_skipped() -> Iterator[None]:
    """Run the block with scipy's docstring decorators keeping each docstring as written."""
    try:
        from scipy._lib import _array_api, _docscrape
    except ImportError:  # another scipy: nothing to skip
        yield
        return
    parser = vars(_docscrape).get("FunctionDoc")
    if not isinstance(parser, type) or vars(_array_api).get("FunctionDoc") is not parser:
        yield
        return
    stand_in = _unparsed(parser)
    _swap(parser, stand_in)
    try:
        yield
    finally:
        _swap(stand_in, parser)


def _swap(old: type[Any], new: type[Any]) -> None:
    """Name ``new`` where a loaded scipy module names ``old`` as its ``FunctionDoc``."""
    for name, module in list(sys.modules.items()):
        names = getattr(module, "__dict__", None)  # None: an import blocked in sys.modules
        if name.startswith("scipy.") and names is not None and names.get("FunctionDoc") is old:
            names["FunctionDoc"] = new


def _unparsed(parser: type[Any]) -> type[Any]:
    """``parser`` (scipy's ``FunctionDoc``) that parses nothing and gives the function's own
    docstring back: a decorator adds its text to the empty sections (what an empty docstring
    parses to), then writes back ``str(doc)`` less its first line (the signature line
    ``FunctionDoc`` starts with)."""

    class Unparsed(parser):  # type: ignore[misc]
        def __init__(self, func: Any, role: str = "func", *_: Any, **__: Any) -> None:
            # Not the parser's __init__: even an empty docstring costs it a deep copy of
            # its sections.
            self._f = func
            self._role = role
            self._parsed_data = {k: copy.copy(v) for k, v in parser.sections.items()}
            self.kept: str = getattr(func, "__doc__", None) or ""

        def __str__(self) -> str:
            return "\n" + self.kept

    return Unparsed

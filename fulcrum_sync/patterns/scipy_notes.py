"""Import scipy without writing its array-API notes into ~650 docstrings (issue 26).

scipy 1.17 marks each function that supports other array libraries with a decorator
(``scipy._lib._array_api.xp_capabilities``) that, as the module defining it is imported,
parses the function's docstring with its numpydoc parser (``FunctionDoc``), appends a
"supported backends" table to its Notes and writes the docstring back. Importing
statsmodels' Holt-Winters imports ~650 of them: about 0.3 s of CPU, a fifth of that import,
paid by every process whose patterns forecast, for docstrings no job reads.

:func:`notes_skipped` lets the decorator do everything else (its capabilities table, which
scipy's own tests read) but keep each docstring as it is, while the block imports. It
changes no function, only the text of some docstrings; scipy's layout is checked first, and
when it is not the one expected the block runs as it would have (the notes written).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def notes_skipped() -> Iterator[None]:
    """Run the block with scipy's array-API decorator keeping docstrings unchanged."""
    try:
        from scipy._lib import _array_api
        from scipy._lib._docscrape import FunctionDoc
    except ImportError:  # another scipy: nothing to skip
        yield
        return
    parser: type[Any] = FunctionDoc
    if getattr(_array_api, "FunctionDoc", None) is not parser:
        yield
        return
    _array_api.FunctionDoc = _unparsed(parser)
    try:
        yield
    finally:
        _array_api.FunctionDoc = parser


def _unparsed(parser: type[Any]) -> type[Any]:
    """``parser`` (scipy's ``FunctionDoc``) that reads no docstring and gives the function's
    own back: the decorator appends its note to an empty Notes section, then writes back
    ``str(doc)`` less its first line (the signature line ``FunctionDoc`` starts with)."""

    class Unparsed(parser):  # type: ignore[misc]
        def __init__(self, func: Any, *args: Any, **kwargs: Any) -> None:
            kwargs["doc"] = ""  # an empty docstring parses in microseconds
            super().__init__(func, *args, **kwargs)
            self.kept: str = getattr(func, "__doc__", None) or ""

        def __str__(self) -> str:
            return "\n" + self.kept

    return Unparsed

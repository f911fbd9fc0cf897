"""Third-party warnings through the log: named by their library, without file paths.

Python prints a library's warning as ``/venv/lib/.../fakesnow/cursor.py:689: UserWarning:
...`` plus a source line; ``logging.captureWarnings`` logs that same text under
``py.warnings``. Here a warning becomes one ``warning`` record of the logger named after the
module that raised it (``jwt.api_jwt``) with the text ``InsecureKeyLengthWarning from
jwt.api_jwt: The HMAC key is ...`` (the name in the text too: a terminal's log lines show no
logger names); the log handler formats it like every other line (JSON fields in a pod).

Warnings that are noise to an operator are silenced: fakesnow's (a test stand-in for
Snowflake, warning about its own internals) and statsmodels' fit diagnostics (the forecasting
pattern judges its fits itself).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import TextIO

# (module regex, category) pairs silenced: the warnings of these libraries are noise.
SILENCED = (
    (r"fakesnow(\..*)?$", Warning),
    (r"statsmodels(\..*)?$", Warning),
)


def route_warnings() -> None:
    """Send warnings to the log (once per place, as Python's default filter does) and silence
    the noisy libraries. Calling it again changes nothing: a filter is added only when it is
    missing (adding one resets every warning registry of the process)."""
    present = {(f[2], getattr(f[3], "pattern", None)) for f in warnings.filters if f[0] == "ignore"}
    for module, category in SILENCED:
        if (category, module) not in present:
            warnings.filterwarnings("ignore", category=category, module=module)
    warnings.showwarning = _log_warning


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    name = module_of(filename)
    logging.getLogger(name).warning("%s from %s: %s", category.__name__, name, message)


def module_of(filename: str) -> str:
    """The dotted module of a source file: ``.../site-packages/jwt/api_jwt.py`` ->
    ``jwt.api_jwt``; a file outside every import path is named by its stem."""
    path = Path(filename)
    roots = sorted((Path(p) for p in sys.path if p), key=lambda p: len(p.parts), reverse=True)
    for root in roots:
        try:
            relative = path.relative_to(root)
        except ValueError:
            continue
        parts = list(relative.with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        if parts and all(p.isidentifier() for p in parts):
            return ".".join(parts)
    return path.stem or "warnings"

"""Read a catalog file safely: bounded bytes, UTF-8 text, YAML of bounded depth and size.

Every way a file can be unreadable ends in one InputError naming the file (exit 2), never a
traceback: too large, not UTF-8 (UTF-16 and UTF-32 are named), bad YAML (file and line),
nested too deeply, or too many values once YAML aliases are expanded ("billion laughs").
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from fulcrum_sync.domain import InputError

MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 32  # the catalog's own shape is 7 levels deep
MAX_VALUES = 10_000_000  # values once aliases are expanded; 20,000 tenants use ~500,000

_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def read_text(path: Path) -> str:
    """Return the text of the catalog file at ``path`` (UTF-8, at most MAX_BYTES).

    Raises InputError when it cannot be read, is too large or is not UTF-8.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)  # bounded: /dev/zero is refused, not read forever
    except OSError as exc:
        raise InputError(f"cannot read catalog {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"invalid catalog {path}: larger than {MAX_BYTES // 2**20} MiB")
    return decode(raw, str(path))


def decode(raw: bytes, origin: str) -> str:
    """Decode a catalog's bytes as UTF-8 (a UTF-8 BOM is allowed); raise InputError otherwise."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise InputError(f"invalid catalog {origin}: the file is {name} text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"invalid catalog {origin}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None


def load_yaml(text: str, origin: str) -> Any:
    """Parse YAML safely and check its depth and size; raise InputError naming file and line.

    libyaml parses when installed (a 20,000-tenant catalog in about a second instead of ten);
    on an error the pure-Python parser runs again for its more precise message.
    """
    import yaml  # here: a job that reads its catalog from the database never needs it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)
    except (yaml.YAMLError, RecursionError):
        data = _load_for_message(text, origin)
    check_shape(data, origin)
    return data


def _load_for_message(text: str, origin: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=yaml.SafeLoader)
    except RecursionError:
        _too_deep(origin)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark is not None else origin
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        # An unclosed bracket fails where the file ends: also say where it was opened.
        context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and opened is not None and mark is not None and opened.line != mark.line:
            problem += f" ({context} on line {opened.line + 1})"
        raise InputError(f"invalid YAML in {where}: {problem}") from None


def check_shape(data: Any, origin: str) -> None:
    """Refuse data nested deeper than MAX_DEPTH or holding more than MAX_VALUES values.

    A container shared through YAML aliases is measured once, so a file that would expand
    to billions of values is refused in time linear in its size.
    """
    seen: dict[int, tuple[int, int]] = {}  # id(container) -> (values, height), aliases expanded

    def measure(node: dict[Any, Any] | list[Any], level: int) -> tuple[int, int]:
        known = seen.get(id(node))
        if known is None:
            if level > MAX_DEPTH:
                _too_deep(origin)
            values, height = 1, 1
            children: Iterable[Any] = node
            if isinstance(node, dict):
                values += len(node)  # the keys: scalars (YAML refuses unhashable ones)
                children = node.values()
            for child in children:
                if isinstance(child, dict | list):
                    inner, deep = measure(child, level + 1)
                    values, height = values + inner, max(height, deep + 1)
                else:
                    values += 1
            known = seen[id(node)] = (values, height)
        values, height = known
        if level - 1 + height > MAX_DEPTH:  # a shared container reached at a deeper level
            _too_deep(origin)
        if values > MAX_VALUES:
            raise InputError(
                f"invalid catalog {origin}: more than {MAX_VALUES:,} values once YAML aliases "
                "are expanded"
            )
        return known

    if isinstance(data, dict | list):
        measure(data, 1)


def _too_deep(origin: str) -> NoReturn:
    raise InputError(f"invalid catalog {origin}: nested more than {MAX_DEPTH} levels deep")

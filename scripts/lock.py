"""Refresh the lock files from pyproject.toml, or check that they still agree with it.

    python scripts/lock.py            # resolve what changed: requirements.lock, -test.lock
    python scripts/lock.py --upgrade  # move every pin to the newest allowed version
    python scripts/lock.py --check    # exit 1 when pyproject.toml and the locks disagree

Refreshing runs pip-compile (pip-tools, ``pip install pip-tools``) with ``--generate-hashes``
against PyPI, once for the runtime dependencies and once with the ``test`` extra (keeping
the existing pins that still fit unless ``--upgrade``), and writes
on each lock's first line the SHA-256 of the inputs it was resolved from (the dependency
lists in pyproject.toml). ``--check`` needs no network: it compares that hash with
pyproject.toml's, and checks every requirement in pyproject.toml is pinned in the lock at a
version its specifier allows (tests/deploy/test_lock.py runs it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
# lock file -> the extras it includes
LOCKS: dict[str, tuple[str, ...]] = {
    "requirements.lock": (),
    "requirements-test.lock": ("test",),
}
HASH_LINE = "# inputs-sha256: "
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def inputs(extras: tuple[str, ...]) -> list[str]:
    """The requirements a lock is resolved from: the dependencies plus the extras' lists."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return reqs


def inputs_hash(extras: tuple[str, ...]) -> str:
    """SHA-256 of the lock's inputs (order-insensitive, whitespace-normalised)."""
    canon = sorted(str(Requirement(r)) for r in inputs(extras))
    body = json.dumps({"extras": list(extras), "requirements": canon})
    return hashlib.sha256(body.encode()).hexdigest()


def pins(lock_text: str) -> dict[str, str]:
    """Package name (canonical) -> pinned version, from a pip-compile output."""
    found: dict[str, str] = {}
    for line in lock_text.splitlines():
        match = PIN.match(line)
        if match:
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def problems(name: str, extras: tuple[str, ...]) -> list[str]:
    """Why the lock ``name`` disagrees with pyproject.toml (empty when it agrees)."""
    path = ROOT / name
    if not path.exists():
        return [f"{name} is missing; run python scripts/lock.py"]
    text = path.read_text()
    found: list[str] = []
    first = text.splitlines()[0] if text else ""
    if first != HASH_LINE + inputs_hash(extras):
        found.append(f"{name} was resolved from other inputs than pyproject.toml's")
    pinned = pins(text)
    for raw in inputs(extras):
        req = Requirement(raw)
        version = pinned.get(canonicalize_name(req.name))
        if version is None:
            found.append(f"{name} does not pin {req.name}")
        elif not req.specifier.contains(version, prereleases=True):
            found.append(f"{name} pins {req.name}=={version}, outside {req.specifier}")
    return found


def compile_lock(name: str, extras: tuple[str, ...], upgrade: bool) -> None:
    """Re-resolve one lock with pip-compile and stamp its inputs hash on the first line."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        if (ROOT / name).exists() and not upgrade:  # pip-compile keeps the pins it finds
            out.write_text((ROOT / name).read_text().partition("\n")[2])
        extra_args = [f"--extra={e}" for e in extras] + (["--upgrade"] if upgrade else [])
        subprocess.run(
            [
                sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes",
                "--allow-unsafe", "--strip-extras", "--no-emit-index-url",
                "--no-emit-find-links",
                *extra_args, "--output-file", str(out), str(PYPROJECT),
            ],
            check=True,
            cwd=ROOT,
            env={**os.environ, "CUSTOM_COMPILE_COMMAND": "python scripts/lock.py"},
        )  # fmt: skip
        body = out.read_text()
    (ROOT / name).write_text(f"{HASH_LINE}{inputs_hash(extras)}\n{body}")


def main(argv: list[str]) -> int:
    if "--check" in argv:
        found = [p for name, extras in LOCKS.items() for p in problems(name, extras)]
        for line in found:
            print(line, file=sys.stderr)
        if found:
            print("refresh with: python scripts/lock.py", file=sys.stderr)
        return 1 if found else 0
    for name, extras in LOCKS.items():
        compile_lock(name, extras, upgrade="--upgrade" in argv)
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

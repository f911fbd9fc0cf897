"""Check a built image: it runs the demo sync, and ships exactly requirements.lock.

    python scripts/check_image.py fulcrum-sync:test          # DOCKER=/usr/bin/docker to pick
                                                             # the client

In containers without a network, read-only with a scratch /tmp (as Kubernetes runs them):
`sync --grain day` on the embedded default (SQLite + demo source) then `status` in the same
container, both exit 0; `pip check` passes; and every distribution pinned in
requirements.lock is installed at its pinned version (the project itself and the base
image's pip/setuptools are the only extras). Exit 1 on the first failure. Needs a Docker
engine, so CI does not run it; docs/deployment.md says when it was last run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
BASE_EXTRAS = {"fulcrum-sync", "pip", "setuptools", "wheel"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path) -> dict[str, str]:
    pins = (PIN.match(line) for line in lock.read_text(encoding="utf-8").splitlines())
    return {canonical(m[1]): m[2] for m in pins if m}


def run_in(image: str, *command: str) -> subprocess.CompletedProcess[str]:
    docker = os.environ.get("DOCKER", "docker")
    isolated = ["--network", "none", "--read-only", "--tmpfs", "/tmp"]
    args = [docker, "run", "--rm", *isolated, "--entrypoint", "sh", image, "-c", " ".join(command)]
    print("+", " ".join(args), flush=True)
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def check(image: str) -> list[str]:
    problems = []
    demo = run_in(image, "fulcrum-sync sync --grain day > /dev/null && fulcrum-sync status")
    print(demo.stdout + demo.stderr)
    if demo.returncode != 0:
        problems.append(f"sync then status exited {demo.returncode}")
    pip_check = run_in(image, "pip check")
    print(pip_check.stdout + pip_check.stderr)
    if pip_check.returncode != 0:
        problems.append(f"pip check exited {pip_check.returncode}")
    listed = run_in(image, "pip list --format=freeze")
    installed = dict(
        (canonical(n), v) for n, _, v in (line.partition("==") for line in listed.stdout.split())
    )
    pins = locked(ROOT / "requirements.lock")
    differ = {n: (v, installed.get(n)) for n, v in pins.items() if installed.get(n) != v}
    extra = sorted(set(installed) - set(pins) - BASE_EXTRAS)
    print(f"{len(pins)} pinned, {len(pins) - len(differ)} installed at the pinned version")
    if differ:
        problems.append(f"not at the locked version (lock, image): {differ}")
    if extra:
        problems.append(f"installed but not in the lock: {extra}")
    return problems


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(sys.argv[1])
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

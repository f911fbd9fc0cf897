"""The script keeps numpy's OpenBLAS to one thread unless the operator says otherwise (issue 26:
its thread pool cost ~30 ms of CPU per process on 2 cores, more on a large node)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_SHOW = """
import os, sys
sys.argv = ["fulcrum-sync", "--version"]
from fulcrum_sync.cli import main
try:
    main()
except SystemExit:
    pass
print(os.environ.get("OPENBLAS_NUM_THREADS"))
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("4", "4")])
def test_the_script_sets_one_blas_thread_unless_told(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    ran = subprocess.run(
        [sys.executable, "-c", _SHOW], env=env, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip().splitlines()[-1] == expected, ran.stdout + ran.stderr

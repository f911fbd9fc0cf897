"""CLI start: ``fulcrum-sync --help`` wall time against ``python -c pass``; and the CPU of
the cron job that finds nothing to do (``benchmarks/cli_idle.py``) against its floors.

Both run alternately, several times, from an empty directory; the figure is the difference
of the medians. The details name the heavy packages ``--help`` imports and where import
time goes (``python -X importtime``, own time summed per top-level package).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cli_process import cli_command
from benchmarks.common import Figure, Measurement, Progress, Sizes, median

TARGET_EXTRA_SECONDS = 0.3
HEAVY = (
    "pandas",
    "numpy",
    "statsmodels",
    "scipy",
    "snowflake",
    "pyarrow",
    "sqlalchemy",
    "alembic",
    "httpx",
    "pydantic",
    "pydantic_settings",
    "rich",
    "typer",
    "yaml",
    "jwt",
    "tenacity",
    "cryptography",
    "psycopg",
)

_PROBE = """
import json, sys
from fulcrum_sync.cli import app
try:
    app(["--help"])
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def measure(sizes: Sizes, progress: Progress) -> Measurement:
    """Time both commands ``sizes.cli_runs`` times each, alternating."""
    m = Measurement("cli_start", "CLI start (fulcrum-sync --help vs python -c pass)")
    cli = [*cli_command(), "--help"]
    bare = [sys.executable, "-c", "pass"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_SYNC_")}
    runs = max(sizes.cli_runs, 1)
    progress(f"cli_start: {runs} × ({Path(cli[0]).name} --help, python -c pass)")
    with tempfile.TemporaryDirectory(prefix="fulcrum-bench-") as tmp:

        def wall(cmd: list[str]) -> float:
            start = time.perf_counter()
            subprocess.run(cmd, cwd=tmp, env=env, check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - start

        wall(cli)  # warm the file cache once
        cli_times, bare_times = [], []
        for _ in range(runs):
            bare_times.append(wall(bare))
            cli_times.append(wall(cli))
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE],
            cwd=tmp,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        modules = json.loads(probe.stdout.strip().splitlines()[-1])  # after the help text
        importtime = _import_times(tmp, env)
    extra = median(cli_times) - median(bare_times)
    heavy = [name for name in HEAVY if name in modules]
    m.add(
        Figure(
            "extra_seconds",
            "--help minus python -c pass (medians)",
            extra,
            "s",
            "<",
            TARGET_EXTRA_SECONDS,
            f"{median(cli_times):.2f} s vs {median(bare_times):.2f} s",
        ),
        Figure(
            "heavy_imports",
            "heavy packages imported by --help",
            len(heavy),
            "",
            note=", ".join(heavy),
        ),
    )
    m.details = {
        "command": " ".join([Path(cli[0]).name, *cli[1:]]),
        "runs": runs,
        "cli_seconds": [round(x, 3) for x in cli_times],
        "python_seconds": [round(x, 3) for x in bare_times],
        "heavy_imports": heavy,
        "import_ms_by_package": importtime,
    }
    from benchmarks.cli_idle import add_figures  # (cli_idle imports this module)

    add_figures(m, sizes, progress)
    return m


def _import_times(cwd: str, env: dict[str, str]) -> dict[str, float]:
    """Own import time per top-level package for ``import fulcrum_sync.cli``, top ten, ms."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import fulcrum_sync.cli"],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        package = name.split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(own) / 1000
    top = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:10]
    return {name: round(ms, 1) for name, ms in top}

"""Run one command as cron would and report its own wall, CPU and peak RSS as one JSON line.

``python benchmarks/launch.py OUT ERR -- fulcrum-sync sync --grain day`` runs the command
with its stdout in OUT and its stderr in ERR, waits for it with ``wait4`` and prints
``{"exit": …, "wall": …, "user": …, "sys": …, "max_rss_kb": …}``.

Why a launcher: Linux carries a process's peak RSS across ``exec``, so a command started
by the benchmark process itself (hundreds of MB once pandas and the in-process benchmarks
ran) would report the parent's peak as its own. This script imports only the standard
library (about 10 MB), so the peak it reads is the command's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: launch.py OUT ERR -- COMMAND…", file=sys.stderr)
        return 2
    out_path, err_path, command = argv[0], argv[1], argv[3:]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    report = {
        "exit": proc.returncode,
        "wall": wall,
        "user": usage.ru_utime,
        "sys": usage.ru_stime,
        "max_rss_kb": usage.ru_maxrss,
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

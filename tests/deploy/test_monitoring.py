"""k8s/monitoring: the PrometheusRule and the Grafana dashboard name only metrics the tool
exports (pushed by the jobs, or printed by ``status --format openmetrics``), and both are
well-formed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from fulcrum_sync.metrics import PUSHED
from fulcrum_sync.render.openmetrics import STATUS_GAUGES

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "k8s" / "monitoring"
EXPORTED = set(PUSHED) | set(STATUS_GAUGES)
METRIC = re.compile(r"\bfulcrum_sync_[a-z_]+\b")
DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)

# The structure the Prometheus Operator's CRD (monitoring.coreos.com/v1, PrometheusRule)
# accepts, as its openAPIV3Schema says; kubernetes-validate ships no schema for custom
# resources, so the test holds the part this manifest uses.
RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": DURATION},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "alert": {"type": "string"},
                                        "record": {"type": "string"},
                                        "expr": {"type": ["string", "integer"]},
                                        "for": {"type": "string", "pattern": DURATION},
                                        "keep_firing_for": {"type": "string", "pattern": DURATION},
                                        "labels": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                        "annotations": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def rule_doc() -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all((MONITORING / "prometheusrule.yaml").read_text()) if d]
    return doc  # type: ignore[no-any-return]


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_doc()["spec"]["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads((MONITORING / "grafana-dashboard.json").read_text())  # type: ignore[no-any-return]


def balanced(expr: str) -> bool:
    depth = 0
    for char in re.sub(r'"[^"]*"', "", expr):
        depth += {"(": 1, ")": -1, "{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_prometheus_rule_is_a_well_formed_custom_resource() -> None:
    doc = rule_doc()
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):  # a CRD: no built-in schema
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    jsonschema.validate(doc, RULE_SCHEMA)
    for rule in rules():
        assert ("alert" in rule) != ("record" in rule), rule
        assert rule.get("annotations", {}).get("summary"), f"{rule['alert']}: no summary"


def test_alerts_cover_staleness_per_grain_a_failed_run_and_contexts_behind() -> None:
    exprs = {(r["alert"], r["expr"]) for r in rules()}
    stale = {
        re.search(r'grain="(\w+)"', e).group(1) for a, e in exprs if a == "FulcrumSyncGrainStale"
    }  # type: ignore[union-attr]
    assert stale == {"day", "week", "month"}
    alerts = {a for a, _ in exprs}
    assert {"FulcrumSyncRunFailed", "FulcrumSyncContextsBehind"} <= alerts
    stale_day = next(e for a, e in exprs if a == "FulcrumSyncGrainStale" and 'grain="day"' in e)
    assert "fulcrum_sync_last_success_timestamp_seconds" in stale_day
    assert "(24 + 6) * 3600" in stale_day  # one interval plus the deadline and grace


@pytest.mark.parametrize("where", ["alerts", "dashboard"])
def test_every_query_names_only_metrics_the_tool_exports(where: str) -> None:
    if where == "alerts":
        queries = [str(r["expr"]) for r in rules()]
    else:
        panels = dashboard()["panels"]
        assert panels
        queries = []
        for panel in panels:
            assert panel["targets"], f"panel {panel['title']!r} has no query"
            queries += [t["expr"] for t in panel["targets"]]
    for query in queries:
        named = set(METRIC.findall(query))
        assert named, f"{query!r} names no fulcrum_sync metric"
        assert named <= EXPORTED, f"{query!r} names {named - EXPORTED}, which nothing exports"
        assert balanced(query), f"unbalanced brackets in {query!r}"
        for label in re.findall(r"(\w+)=", query):
            assert label in {"job", "command", "grain", "outcome"}, f"{query!r}: label {label}"


def test_dashboard_is_shipped_as_a_valid_configmap() -> None:
    (kustomization,) = yaml.safe_load_all((MONITORING / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    name, _, source = generator["files"][0].partition("=")
    assert (MONITORING / source).is_file()
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": generator["name"], "labels": generator["options"]["labels"]},
        "data": {name: (MONITORING / source).read_text()},
    }
    kubernetes_validate.validate(configmap, kubernetes_validate.latest_version(), strict=True)
    assert kustomization["resources"] == ["prometheusrule.yaml"]
    board = dashboard()
    assert board["uid"] == "fulcrum-sync" and board["schemaVersion"] >= 30
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))

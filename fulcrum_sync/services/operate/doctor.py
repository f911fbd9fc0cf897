"""``doctor``: check every setting and dependency once, each finding with its fix.

Checks run in order (settings, database, schema, catalog, source, cache target, clock); one
that needs an earlier one that failed is skipped, not failed. Nothing is written: the schema
is neither created nor migrated.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pydantic import BaseModel, SecretStr
from sqlalchemy import Engine

from fulcrum_sync import catalog as cat
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import FulcrumError, InputError, RefusedError, StoreError
from fulcrum_sync.domain.doctor import FAIL, OK, SKIP, WARN, Check, DoctorReport
from fulcrum_sync.secrets import redact_url
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.sinks.base import CacheSink
from fulcrum_sync.sources.base import Source
from fulcrum_sync.sources.registry import source_entry
from fulcrum_sync.sources.urls import public_url
from fulcrum_sync.store import health
from fulcrum_sync.store.engine import HEAD_REVISION, current_revision, open_engine

KNOWN_REVISIONS = ("0001",)  # every migration this version ships, oldest first
CLOCK_WARN_SECONDS = 5.0
CLOCK_FAIL_SECONDS = 60.0  # leases and Cube's JWT expiry assume clocks that agree
CUBE_RETRIES = 1  # one retry: a check should answer in seconds, not after a full backoff
_AUTH = re.compile(r"authenticat|HTTP 40[13]\b|Invalid token", re.IGNORECASE)
_SNOWFLAKE_AUTH = re.compile(r"incorrect username or password|authenticat|JWT|390100", re.I)


def run(deps: Deps, now: datetime | None = None) -> DoctorReport:
    """Check the settings, the state database and its schema, the catalog, the source (one
    ``/meta`` per tenant for Cube), the cache target and the clock; never raises for a finding.
    """
    report = DoctorReport()
    try:
        settings = deps.get_settings()
    except InputError as exc:
        fix = "correct the variable named (environment or .env)"
        report.add(Check("settings", FAIL, str(exc), fix))
        return report
    _settings(report, settings)
    with _engine(report, deps, settings) as engine:
        catalog = _catalog(report, engine, settings) if engine is not None else None
        if engine is None:
            report.add(Check("catalog", SKIP, "needs the database"))
        _source(report, deps, settings, catalog)
        _cache_target(report, deps, settings, catalog)
        _clock(report, engine, now)
    return report


def _flat_settings(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, object, bool]]:
    """Each setting as (variable name, value, set?): sub-models (``cube``) give their fields
    under their flat names (``FULCRUM_SYNC_CUBE_API_URL``)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        env = f"{prefix}{name.upper()}"
        if isinstance(value, BaseModel):
            yield from _flat_settings(value, f"{env}_")
        else:
            yield env, value, name in model.model_fields_set


def _settings(report: DoctorReport, settings: Settings) -> None:
    for env, value, given in _flat_settings(settings, "FULCRUM_SYNC_"):
        if env == "FULCRUM_SYNC_DATABASE_URL":
            report.settings[env] = settings.masked_database_url
        elif isinstance(value, SecretStr):
            report.settings[env] = "set" if value.get_secret_value() else "unset"
        elif isinstance(value, str) and "://" in value:
            report.settings[env] = redact_url(value)  # a Cube or Pushgateway URL's password
        else:
            report.settings[env] = "" if value is None else str(value)
        if given:
            report.settings_set.append(env)
    listed = ", ".join(
        f"{env.removeprefix('FULCRUM_SYNC_')}={report.settings[env] or '(empty)'}"
        for env in report.settings_set
    )
    report.add(
        Check(
            "settings",
            OK,
            f"valid; source {settings.source}, cache target {settings.cache_target}; "
            + (f"set: {listed}" if listed else "all defaults"),
        )
    )


@contextmanager
def _engine(report: DoctorReport, deps: Deps, settings: Settings) -> Iterator[Engine | None]:
    """Connect without migrating; report the database and schema checks; dispose if opened."""
    url = settings.masked_database_url
    engine = deps.engine
    owned = engine is None
    try:
        if engine is None:
            limits = dataclasses.replace(settings.database_limits, retry_seconds=0)  # say it now
            url_text = settings.database_url.get_secret_value()
            engine = open_engine(url_text, migrate=False, limits=limits)
        version = health.server_version(engine)
    except InputError as exc:
        report.add(Check("database", FAIL, str(exc), "correct FULCRUM_SYNC_DATABASE_URL"))
        report.add(Check("schema", SKIP, "needs the database"))
        yield None
        return
    except StoreError as exc:
        fix = f"start the database server, or correct FULCRUM_SYNC_DATABASE_URL (now {url})"
        report.add(Check("database", FAIL, str(exc), fix, unreachable=True))
        report.add(Check("schema", SKIP, "needs the database"))
        yield None
        return
    try:
        report.add(Check("database", OK, f"{url} reachable ({version})"))
        _schema(report, engine)
        yield engine
    finally:
        if owned:
            engine.dispose()


def _schema(report: DoctorReport, engine: Engine) -> None:
    revision = current_revision(engine)
    upgrade = "run `fulcrum-sync db upgrade`"
    if revision == HEAD_REVISION:
        report.add(Check("schema", OK, f"at revision {revision}, the newest"))
    elif revision is None:
        report.add(
            Check("schema", WARN, "empty: no schema yet", f"{upgrade} (any command also does)")
        )
    elif revision not in KNOWN_REVISIONS:
        report.add(
            Check(
                "schema",
                FAIL,
                f"at revision {revision}, written by a newer fulcrum-sync (this one knows "
                f"up to {HEAD_REVISION})",
                "upgrade fulcrum-sync to the version that migrated this database",
            )
        )
    else:
        detail = f"at revision {revision}, behind the newest {HEAD_REVISION}"
        report.add(Check("schema", FAIL, detail, upgrade))


def _catalog(report: DoctorReport, engine: Engine, settings: Settings) -> cat.Catalog | None:
    from fulcrum_sync.services.contexts.catalog import check_patterns
    from fulcrum_sync.store.catalog import read_catalog
    from fulcrum_sync.store.contexts import active_context_keys

    load = "load one with `fulcrum-sync catalog load FILE`"
    if current_revision(engine) is None:
        report.add(Check("catalog", SKIP, "needs the schema"))
        return None
    try:
        catalog = read_catalog(engine)
        check_patterns(catalog)
        discovered = sum(1 for key in active_context_keys(engine) if not key[3])
    except FulcrumError as exc:
        report.add(Check("catalog", FAIL, str(exc), f"{load} again"))
        return None
    if not catalog.tenants:
        if source_entry(settings.source).self_contained:
            fix = "none needed: discover or sync loads the demo catalog"
            report.add(Check("catalog", WARN, "none loaded yet", fix))
        else:
            report.add(Check("catalog", FAIL, "none loaded: there is nothing to sync", load))
        return catalog
    taking_part = [t for t in catalog.tenants if t.active and t.cache_enabled]
    metrics = sum(len(t.metrics) for t in catalog.tenants)
    contexts = len(cat.active_contexts(catalog))
    detail = (
        f"valid: {len(catalog.tenants)} tenants ({len(taking_part)} taking part), {metrics} "
        f"metrics, {contexts} active contexts ({discovered} discovered)"
    )
    report.add(Check("catalog", OK, detail))
    return catalog


def _source(
    report: DoctorReport, deps: Deps, settings: Settings, catalog: cat.Catalog | None
) -> None:
    if source_entry(settings.source).self_contained and deps.source is None:
        report.add(Check("source", OK, f"demo (seed {settings.demo_seed}): no account needed"))
        return
    source = deps.source
    blocks = {t.identifier: t.cube for t in (catalog.tenants if catalog else ())}
    try:
        if source is None:
            from fulcrum_sync.sources import build_source

            cube = settings.cube
            quick = cube.model_copy(update={"retries": min(cube.retries, CUBE_RETRIES)})
            quick_settings = settings.model_copy(update={"cube": quick})
            source = build_source(quick_settings, connections=lambda: blocks)
    except InputError as exc:
        report.add(Check("cube", FAIL, str(exc), "set the variable named"))
        return
    try:
        _tenants(report, settings, source, catalog)
    finally:
        if deps.source is None:
            source.close()


def _by_endpoint(
    report: DoctorReport, settings: Settings, source: Source, tenants: list[str]
) -> dict[str, list[str]]:
    """The tenants behind each endpoint; a tenant whose endpoint cannot be built (a missing
    variable or file) gets its failing check here."""
    groups: dict[str, list[str]] = {}
    route = getattr(source, "source_for", None)  # tenants' own Cubes (routing source)
    for tenant in tenants:
        try:
            target = route(tenant) if route is not None else source
        except InputError as exc:
            report.add(Check(f"cube {tenant}", FAIL, str(exc), "set the variable named"))
            continue
        where = getattr(target, "endpoint", None) or public_url(settings.cube.api_url)
        groups.setdefault(where, []).append(tenant)
    return groups


def _tenants(
    report: DoctorReport, settings: Settings, source: Source, catalog: cat.Catalog | None
) -> None:
    """Each distinct endpoint once: its tenants' /meta, stopping at the first unreachable."""
    tenants = [
        t.identifier for t in (catalog.tenants if catalog else ()) if t.active and t.cache_enabled
    ]
    if not tenants:
        report.add(Check("cube", SKIP, "no tenant to ask for: the tenants come from the catalog"))
        return
    groups = _by_endpoint(report, settings, source, tenants)
    for where, behind in groups.items():
        for i, tenant in enumerate(behind):
            name = f"cube {tenant}"
            try:
                meta = source.fetch_metadata(tenant)
            except FulcrumError as exc:
                check = report.add(_cube_failure(name, exc, settings, where))
                if check.unreachable:
                    for rest in behind[i + 1 :]:
                        report.add(Check(f"cube {rest}", SKIP, f"Cube at {where} is unreachable"))
                    break
                continue
            members = len(meta.measures) + len(meta.dimensions)
            report.add(Check(name, OK, f"{where}: token accepted; /meta lists {members} members"))
        if len(groups) > 1:
            names = ", ".join(behind)
            failed = [c for c in report.checks if c.name in {f"cube {t}" for t in behind}]
            down = any(c.unreachable for c in failed)
            state = "unreachable" if down else "reachable"
            report.add(
                Check(
                    f"cube endpoint {where}",
                    FAIL if down else OK,
                    f"Cube at {where} {state}; tenants behind it: {names}",
                    f"check that Cube is up and reachable from here at {where}" if down else None,
                    unreachable=down,
                )
            )


def _cube_failure(name: str, exc: FulcrumError, settings: Settings, where: str) -> Check:
    """Classify a failed /meta: a refused token or wrong URL (2) or an unreachable Cube (3)."""
    text = str(exc).split(": check ", 1)[0]  # the fix is given on its own
    if isinstance(exc, InputError) or _AUTH.search(text):
        fix = (
            "check FULCRUM_SYNC_CUBE_API_SECRET (the secret Cube verifies tokens with) and "
            f"FULCRUM_SYNC_CUBE_TENANT_CLAIM (now {settings.cube.tenant_claim!r})"
        )
        return Check(name, FAIL, text, fix)
    if "HTTP 404" in text:
        return Check(name, FAIL, text, f"check FULCRUM_SYNC_CUBE_API_URL (now {where})")
    fix = f"check that Cube is up and reachable from here at {where} (FULCRUM_SYNC_CUBE_API_URL)"
    return Check(name, FAIL, text, fix, unreachable=True)


def _cache_target(
    report: DoctorReport, deps: Deps, settings: Settings, catalog: cat.Catalog | None = None
) -> None:
    if settings.cache_target == "local" and deps.sink is None:
        report.add(Check("cache", OK, "local: cache tables go to the state database"))
        return
    if deps.sink is not None:
        _destination(report, deps.sink, f"target {deps.sink.target}", [])
        return
    from fulcrum_sync.sinks.destinations import snowflake_destinations

    destinations = snowflake_destinations(settings, deps.snowflake_connect)
    tenants = [t for t in (catalog.tenants if catalog else ()) if t.active and t.cache_enabled]
    groups: dict[str, tuple[CacheSink, list[str]]] = {}
    try:
        if not tenants or any(t.cache is None for t in tenants):
            try:  # the settings' destination, named by itself
                sink = destinations.default_sink()
                groups[sink.destination] = (sink, [])
            except InputError as exc:
                fix = "set the FULCRUM_SYNC_SNOWFLAKE_* named"
                report.add(Check("snowflake", FAIL, str(exc), fix))
        for tenant in tenants:
            try:
                sink = destinations.sink_for(tenant)
            except InputError as exc:
                if tenant.cache is not None:  # the settings' failure is reported above
                    fix = f"fix tenant {tenant.identifier}'s cache: block or its secret"
                    report.add(Check("snowflake", FAIL, str(exc), fix))
                continue
            groups.setdefault(sink.destination, (sink, []))[1].append(tenant.identifier)
        for label, (sink, names) in groups.items():
            auth = getattr(sink, "auth", None)
            _destination(report, sink, f"{label}, {auth}" if auth else label, names)
    finally:
        destinations.close()


def _destination(report: DoctorReport, sink: CacheSink, where: str, tenants: list[str]) -> None:
    """Log into one cache destination (once), naming the tenants behind it."""
    behind = f", for tenants {', '.join(tenants)}" if tenants else ""
    try:
        sink.open()
    except FulcrumError as exc:
        if isinstance(exc, RefusedError) or _SNOWFLAKE_AUTH.search(str(exc)):
            fix = f"check the user and its password or private key of {where}{behind}"
            report.add(Check("snowflake", FAIL, str(exc), fix))
        else:
            fix = f"check the account of {where}{behind} and that Snowflake is reachable"
            report.add(Check("snowflake", FAIL, str(exc), fix, unreachable=True))
        return
    report.add(Check("snowflake", OK, f"reachable: {where}{behind}"))


def _clock(report: DoctorReport, engine: Engine | None, now: datetime | None) -> None:
    server: datetime | None = None
    unreadable: StoreError | None = None
    try:
        server = health.server_now(engine) if engine is not None else None
    except StoreError as exc:
        unreadable = exc
    local = (now or datetime.now(UTC)).astimezone(UTC)
    shown = local.strftime("%Y-%m-%d %H:%M:%S UTC")
    if not 2020 <= local.year <= 2100:
        report.add(Check("clock", FAIL, f"{shown} is not a plausible date", "set the host clock"))
        return
    if unreadable is not None:
        report.add(Check("clock", WARN, f"{shown}; database clock unreadable: {unreadable}"))
        return
    if server is None:
        report.add(Check("clock", OK, f"{shown} (no database clock to compare with)"))
        return
    drift = (local - server).total_seconds()
    detail = f"{shown}; the database clock differs by {abs(drift):.1f}s"
    fix = "synchronize the clocks (NTP): run-key leases and Cube tokens depend on them"
    if abs(drift) > CLOCK_FAIL_SECONDS:
        report.add(Check("clock", FAIL, detail, fix))
    elif abs(drift) > CLOCK_WARN_SECONDS:
        report.add(Check("clock", WARN, detail, fix))
    else:
        report.add(Check("clock", OK, detail))

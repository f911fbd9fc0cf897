"""Generated hostile inputs at the CLI: arguments and catalog files (hypothesis, issue #16).

Every generated input runs in-process on its own copy of one prepared SQLite state database
(the demo source, "today" fixed by FULCRUM_SYNC_TODAY so any valid run is small). For each:
the exit code is 0 or 2, no output holds a Python traceback, unless the exit was 0 no
table changed (a digest of every table's rows, taken before and after), and when it was 0
nothing stored is dated after the last complete day (no invented future). Each test runs
in shards (ARGUMENT_SHARDS, CATALOG_SHARDS) with a fixed seed each, so CI sees the same
inputs every time and pytest-xdist spreads the shards over its workers; the count of inputs
is asserted per shard, and every CI run (the README's test command) runs all of them:
ARGUMENT_EXAMPLES + CATALOG_EXAMPLES >= MINIMUM_INPUTS (1,000).

The click command is built from the Typer app once per module (typer.testing would rebuild
it on every invoke, ~40 % of an example's time); everything after the parse is the CLI's
own code path.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import typer.main
import typer.testing
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fulcrum_sync.cli import app

TODAY = "2025-08-05"  # last complete: day 2025-08-04, week 2025-07-28, month 2025-07
LAST_COMPLETE_DAY = "2025-08-04"  # nothing stored may be dated after it
ARGUMENT_EXAMPLES = 700
CATALOG_EXAMPLES = 400
ARGUMENT_SHARDS = 4  # each runs ARGUMENT_EXAMPLES / ARGUMENT_SHARDS inputs with its own seed
CATALOG_SHARDS = 2
MINIMUM_INPUTS = 1_000

runner = CliRunner()

CATALOG: dict[str, Any] = {
    "tenants": [
        {
            "tenant_id": 1,
            "identifier": "acme",
            "name": "Acme",
            "pattern_settings": {"performance_status": {"threshold": 0.05}},
            "metrics": [
                {
                    "metric_id": "orders",
                    "label": "Orders",
                    "measure": "orders.count",
                    "time_dimension": "orders.created_at",
                    "dimensions": [{"dimension_id": "region", "member": "orders.region"}],
                    "grains": ["day", "week", "month"],
                    "patterns": ["performance_status"],
                    "targets": {"day": 400, "week": {"2025-W28": 2800}},
                },
                {
                    "metric_id": "legacy",
                    "measure": "signups.count",
                    "time_dimension": "signups.created_at",
                    "active": False,
                },
            ],
        },
        {
            "tenant_id": 2,
            "identifier": "globex",
            "cache_enabled": False,
            "metrics": [
                {
                    "metric_id": "orders",
                    "measure": "o.c",
                    "time_dimension": "o.t",
                    "grains": ["day"],
                }
            ],
        },
        {
            "tenant_id": 3,
            "identifier": "initech",
            "active": False,
            "metrics": [
                {
                    "metric_id": "mrr",
                    "measure": "s.mrr",
                    "time_dimension": "s.t",
                    "grains": ["week"],
                }
            ],
        },
    ]
}


@dataclass
class Counter:
    runs: int = 0


@dataclass(frozen=True)
class Prepared:
    """The prepared state database and where each example runs."""

    template: Path
    work: Path
    folder: Path
    digest: str

    def env(self) -> dict[str, str]:
        return {
            "FULCRUM_SYNC_DATABASE_URL": f"sqlite:///{self.work}",
            "FULCRUM_SYNC_SOURCE": "demo",
            "FULCRUM_SYNC_TODAY": TODAY,
            "FULCRUM_SYNC_LOG_FORMAT": "json",
            "FULCRUM_SYNC_WORKERS": "1",
        }

    def fresh_copy(self) -> None:
        for suffix in ("-wal", "-shm"):
            Path(f"{self.work}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template, self.work)


def table_digest(path: Path) -> str:
    """A digest of every table's rows (order-independent) in the SQLite file at ``path``."""
    digest = hashlib.sha256()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        for name in names:
            rows = sorted(repr(r) for r in conn.execute(f'SELECT * FROM "{name}"'))
            digest.update(f"{name}:{len(rows)}:".encode())
            for row in rows:
                digest.update(row.encode())
    finally:
        conn.close()
    return digest.hexdigest()


@pytest.fixture(scope="module", autouse=True)
def _command_built_once() -> Iterator[None]:
    command = typer.main.get_command(app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", lambda _app: command)
        yield


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    folder = tmp_path_factory.mktemp("hostile")
    template = folder / "template.db"
    env = {**Prepared(template, template, folder, "").env()}
    catalog = folder / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(CATALOG))
    setup = [
        ["catalog", "load", str(catalog)],
        ["discover"],
        ["sync", "--grain", "day"],
        ["sync", "--grain", "week"],
        ["sync", "--grain", "month"],
        ["status"],  # nothing failing or behind: a generated `status` must exit 0
    ]
    for args in setup:
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, (args, result.output)
    yield Prepared(template, folder / "work.db", folder, table_digest(template))


def check(prepared: Prepared, args: list[str]) -> None:
    """Run ``args`` on a fresh copy: exit 0 or 2, no traceback, no change unless exit 0."""
    prepared.fresh_copy()
    result = runner.invoke(app, args, env=prepared.env())
    output = result.output
    shown = f"args={args!r}\nexit={result.exit_code}\n{output[-2000:]}"
    assert result.exit_code in (0, 2), shown
    assert "Traceback" not in output, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    if result.exit_code != 0:
        assert table_digest(prepared.work) == prepared.digest, f"tables changed\n{shown}"
    else:
        assert latest_dates(prepared.work) <= LAST_COMPLETE_DAY, f"future data stored\n{shown}"


def latest_dates(path: Path) -> str:
    """The latest date of any stored series or pattern result ('' when there is none)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        dates = [
            conn.execute(f"SELECT MAX({column}) FROM {table}").fetchone()[0] or ""
            for table, column in (
                ("metric_time_series", "date"),
                ("metric_dimensional_time_series", "date"),
                ("pattern_results", "analysis_period"),
            )
        ]
    finally:
        conn.close()
    return max(dates)


# --------------------------------------------------------------------------- arguments

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=24,
)


@dataclass(frozen=True)
class Fields:
    """Where each argument's value comes from."""

    grain: st.SearchStrategy[str]
    period: st.SearchStrategy[str]
    tenant: st.SearchStrategy[str]
    metric: st.SearchStrategy[str]
    number: st.SearchStrategy[str]
    shard: st.SearchStrategy[str]
    resume: st.SearchStrategy[str]
    word: st.SearchStrategy[str]


_DATES = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
_NEAR = st.dates(min_value=date(2025, 6, 24), max_value=date(2025, 8, 8))


def _weighted(*choices: tuple[st.SearchStrategy[Any], int]) -> st.SearchStrategy[Any]:
    """Draw from one of ``choices`` in proportion to its weight (one_of would not weight)."""
    return st.sampled_from([s for s, n in choices for _ in range(n)]).flatmap(lambda s: s)


def _forms(dates: st.SearchStrategy[date]) -> st.SearchStrategy[str]:
    """A date as a day (mostly), a month or an ISO week string."""
    return _weighted(
        (dates.map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}"), 3),
        (dates.map(lambda d: f"{d.year:04d}-{d.month:02d}"), 1),
        (dates.map(lambda d: f"{d.isocalendar().year:04d}-W{d.isocalendar().week:02d}"), 1),
    )


# Plausible values: an operator's arguments, right or subtly wrong (a period one day too
# late, a tenant with the cache disabled, a week string for a day grain). They reach the
# deep checks and, when right, real runs.
PLAUSIBLE = Fields(
    grain=st.sampled_from(["day", "day", "week", "month", "daily", "WEEKLY", "Month"]),
    period=_forms(_NEAR),
    tenant=st.sampled_from(["acme", "acme", "acme", "globex", "initech"]),
    metric=st.sampled_from(["orders", "orders", "orders", "legacy", "mrr"]),
    number=st.integers(1, 4).map(str),
    shard=st.sampled_from(["0/1", "0/2", "1/2"]),
    resume=st.sampled_from(["nope", "0" * 36]),
    word=st.sampled_from(["sync", "backfill", "performance_status", "local"]),
)
# Hostile values: typos, far dates, injections, huge numbers, control characters.
HOSTILE = Fields(
    grain=st.one_of(st.sampled_from(["fortnight", "", " d", "days"]), _TEXT),
    period=st.one_of(
        _forms(_DATES),
        st.sampled_from(
            [
                "9999-12-31",
                "9999-12",
                "9999-W52",
                "2099-01-01",
                "0000-01-01",
                "0001-01-01",
                "2025-13",
                "2025-W00",
                "2025-W54",
                "2025-02-30",
                "20250701",
                "2025-7-1",
                "",
                " ",
                "2025-07-01T00:00",
                "\u0662\u0660\u0662\u0665-\u0660\u0667-\u0660\u0661",
                "2025-07-01\n",
                "-1",
                "9" * 40,
            ]
        ),
        _TEXT,
    ),
    tenant=st.one_of(
        st.sampled_from(["nope", "ACME", "a'; DROP TABLE tenants; --", "", "a-b", "%", "acme "]),
        _TEXT,
    ),
    metric=st.one_of(st.sampled_from(["nope", "Orders", "o\"r'ders", "", "x" * 70]), _TEXT),
    number=st.one_of(st.integers(-5, 100).map(str), st.integers(-(10**25), 10**25).map(str), _TEXT),
    shard=st.one_of(
        st.sampled_from(["2/2", "0/0", "-1/2", "a/b", "1", "0/9" * 9, "0/" + "9" * 30]), _TEXT
    ),
    resume=st.one_of(st.sampled_from(["", "%", "_", " "]), _TEXT),
    word=_TEXT,
)


def _option(
    name: str, values: st.SearchStrategy[str], given: int = 1, left_out: int = 1
) -> st.SearchStrategy[list[str]]:
    """``[name, value]`` or nothing, in the ratio ``given : left_out``."""
    return _weighted((values.map(lambda v: [name, v]), given), (st.just([]), left_out))


def _flags(*names: str) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(names), unique=True, max_size=len(names))


def _command(*parts: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    return st.tuples(*parts).map(lambda lists: [a for part in lists for a in part])


def _fixed(*args: str) -> st.SearchStrategy[list[str]]:
    return st.just(list(args))


def arguments(f: Fields) -> st.SearchStrategy[list[str]]:
    """Every command with its options, their values drawn from ``f``."""
    contexts = st.one_of(
        st.tuples(PLAUSIBLE.tenant, PLAUSIBLE.metric).map("::".join),
        st.sampled_from(["acme::nope", "x::y::z", "acme", ":: "]),
        f.word,
    )
    return st.one_of(
        _command(
            _fixed("sync"),
            _option("--grain", f.grain, given=4),
            _option("--period", f.period),
            _option("--tenant", f.tenant),
            _option("--metric", f.metric),
            _option("--workers", f.number),
            _flags("--force-full", "--force", "--no-patterns", "--dry-run", "--json"),
        ),
        _command(
            _fixed("patterns"),
            _option("--grain", f.grain, given=4),
            _option("--period", f.period),
            _option("--tenant", f.tenant),
            _option("--metric", f.metric),
            _option(
                "--pattern", st.one_of(st.sampled_from(["performance_status", "nope"]), f.word)
            ),
            _flags("--force", "--json"),
        ),
        _command(
            _fixed("patterns", "show"),
            contexts.map(lambda c: [c]),
            _option("--grain", f.grain, given=4),
            _option("--period", f.period),
        ),
        _command(
            _fixed("cache-load"),
            _option("--grain", f.grain, given=4),
            _option("--tenant", f.tenant),
            _option("--metric", f.metric),
            _option("--target", st.one_of(st.sampled_from(["local", "snowflake"]), f.word)),
        ),
        _command(
            _fixed("backfill"),
            _option("--grain", f.grain, given=4),
            _option("--start", f.period, given=4),
            _option("--end", f.period, given=4),
            _option("--tenant", f.tenant),
            _option("--metric", f.metric),
            _option("--shard", f.shard, left_out=3),
            _option("--resume", f.resume, left_out=5),
            _flags("--dry-run", "--no-patterns", "--force"),
        ),
        _command(
            _fixed("discover"),
            _option("--grain", f.grain, given=4),
            _flags("--check-source", "--json"),
        ),
        _command(_fixed("status"), _option("--grain", f.grain, given=4), _flags("--json")),
        _command(_fixed("runs"), _option("--limit", f.number), _option("--command", f.word)),
    )


ARGUMENTS = _weighted(
    (arguments(PLAUSIBLE), 6),
    (arguments(HOSTILE), 3),
    (
        _command(
            st.sampled_from([["db", "current"], ["db", "upgrade"], ["patterns", "list"], []]),
            st.lists(_TEXT, max_size=3),
        ),
        1,
    ),
    (_command(_option("--log-format", _TEXT), st.lists(_TEXT, min_size=1, max_size=4)), 1),
)


@pytest.mark.parametrize("shard", range(ARGUMENT_SHARDS))
def test_generated_arguments_exit_0_or_2_and_bad_ones_write_nothing(
    prepared: Prepared, shard: int
) -> None:
    counter = Counter()
    examples = ARGUMENT_EXAMPLES // ARGUMENT_SHARDS

    @seed(1_000 + shard)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(args=ARGUMENTS)
    def run(args: list[str]) -> None:
        counter.runs += 1
        check(prepared, args)

    run()
    print(f"hostile arguments, shard {shard}: {counter.runs} generated, 0 failures")
    assert counter.runs >= examples


# --------------------------------------------------------------------------- catalogs

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**31 - 1, 2**31, 2**63, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x" * 201, "y" * 256, "a::b", "Acme", "ACME", "a b", "day", "weekly"]),
    st.sampled_from(["fortnight", "2025-W28", "9999-12-31", "performance_status", "nope"]),
    st.text(max_size=40),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
LIMITS: list[tuple[str, str, Any]] = [
    *(("tenant", "tenant_id", v) for v in (2**31 - 1, 2**31, 2**63, 2**64, -1, 0, True, 1.5)),
    *(("tenant", "name", "n" * k) for k in (200, 201, 5000)),
    *(("metric", "label", "l" * k) for k in (200, 201)),
    *(("metric", "measure", "m" * k) for k in (0, 255, 256)),
    *(("metric", "metric_id", v) for v in ("m" * 63, "m" * 64, "a b", "-x", "x\n")),
    *(
        ("metric", "targets", {"day": v})
        for v in (float("nan"), float("inf"), -float("inf"), 1e308, 10**400, "1e999", True)
    ),
    ("metric", "targets", {"day": {"2025-07-01": float("nan")}}),
    ("metric", "targets", {"day": {"9999-12-31": 1.0, "0001-01-01": 2.0}}),
    ("metric", "targets", {"week": {"2025-07": 1.0}}),
]
TENANT_FIELDS = ["tenant_id", "identifier", "name", "active", "cache_enabled", "pattern_settings"]
METRIC_FIELDS = [
    "metric_id",
    "label",
    "measure",
    "time_dimension",
    "dimensions",
    "grains",
    "patterns",
    "active",
    "targets",
]


def _template() -> dict[str, Any]:
    return yaml.safe_load(yaml.safe_dump(CATALOG))


@st.composite
def mutated_catalogs(draw: st.DrawFn) -> Any:
    """The valid catalog with a few hostile edits: bad values, missing or extra fields,
    duplicates, look-alike names, deep nesting, non-finite targets."""
    data = _template()
    for _ in range(draw(st.integers(1, 4))):
        # Earlier edits may have replaced any part with junk: pick only what is still a dict.
        tenants = [x for x in data["tenants"] if isinstance(x, dict)]
        tenant = draw(st.sampled_from(tenants)) if tenants else None
        listed = tenant.get("metrics") if tenant is not None else None
        metrics = [x for x in listed if isinstance(x, dict)] if isinstance(listed, list) else []
        metric = draw(st.sampled_from(metrics)) if metrics else None
        edit = draw(
            st.sampled_from(
                [
                    "limit",
                    "limit",
                    "limit",
                    "tenant_value",
                    "metric_value",
                    "drop_tenant_field",
                    "drop_metric_field",
                    "extra_field",
                    "duplicate_tenant",
                    "look_alike",
                    "target",
                    "deep",
                    "no_tenants",
                    "root",
                ]
            )
        )
        if edit == "limit" and tenant is not None:
            # One value at or just past a column's limit; the rest of the catalog stays valid.
            where, field, value = draw(st.sampled_from(LIMITS))
            target = tenant if where == "tenant" else metric
            if target is not None:
                target[field] = value
        elif edit == "tenant_value" and tenant is not None:
            tenant[draw(st.sampled_from(TENANT_FIELDS))] = draw(VALUES)
        elif edit == "metric_value" and metric is not None:
            metric[draw(st.sampled_from(METRIC_FIELDS))] = draw(VALUES)
        elif edit == "drop_tenant_field" and tenant is not None:
            tenant.pop(draw(st.sampled_from(TENANT_FIELDS)), None)
        elif edit == "drop_metric_field" and metric is not None:
            metric.pop(draw(st.sampled_from(METRIC_FIELDS)), None)
        elif edit == "extra_field":
            target = draw(st.sampled_from([x for x in (data, tenant, metric) if x is not None]))
            target[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
        elif edit == "duplicate_tenant" and tenant is not None:
            copy = yaml.safe_load(yaml.safe_dump(tenant))
            copy["tenant_id"] = draw(st.sampled_from([tenant.get("tenant_id"), 99]))
            identifier = str(tenant.get("identifier"))
            copy["identifier"] = draw(st.sampled_from([identifier, identifier.upper(), "fresh"]))
            data["tenants"].append(copy)
        elif edit == "look_alike" and tenant is not None and metric is not None:
            tenant["identifier"], metric["metric_id"] = "a", "b_c"
            data["tenants"].append(
                {
                    "tenant_id": 77,
                    "identifier": draw(st.sampled_from(["a_b", "A", "a"])),
                    "metrics": [{**metric, "metric_id": draw(st.sampled_from(["c", "B_C"]))}],
                }
            )
        elif edit == "target" and metric is not None:
            value = draw(
                st.one_of(
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-(2**80), 2**80),
                    st.dictionaries(
                        st.one_of(PLAUSIBLE.period, HOSTILE.period),
                        st.floats(allow_nan=True),
                        max_size=3,
                    ),
                    VALUES,
                )
            )
            metric["targets"] = {draw(st.one_of(PLAUSIBLE.grain, HOSTILE.grain)): value}
        elif edit == "deep":
            depth = draw(st.integers(20, 60))
            value: Any = draw(SCALARS)
            for _ in range(depth):
                value = [value]
            (tenant if tenant is not None else data)["pattern_settings"] = value
        elif edit == "no_tenants":
            data["tenants"] = draw(st.sampled_from([[], None]))
            break
        elif edit == "root":
            return draw(st.one_of(VALUES, st.just([]), st.just(None)))
    return data


_NAMES = st.from_regex(r"[a-z][a-z0-9]{0,12}", fullmatch=True)  # no look-alikes: no "_"


@st.composite
def valid_catalogs(draw: st.DrawFn) -> dict[str, Any]:
    """Catalogs that must load (exit 0): ids in range, names within limits, finite targets."""
    count = draw(st.integers(1, 4))
    ids = draw(st.lists(st.integers(0, 2**31 - 1), min_size=count, max_size=count, unique=True))
    names = draw(st.lists(_NAMES, min_size=count, max_size=count, unique=True))
    tenants = []
    for tenant_id, identifier in zip(ids, names, strict=True):
        metric_ids = draw(st.lists(_NAMES, max_size=3, unique=True))
        metrics = [
            {
                "metric_id": metric_id,
                "label": draw(st.text(max_size=200)),
                "measure": "orders.count",
                "time_dimension": "orders.created_at",
                "grains": draw(
                    st.lists(
                        st.sampled_from(["day", "week", "month"]),
                        min_size=1,
                        max_size=3,
                        unique=True,
                    )
                ),
                "patterns": draw(st.sampled_from([[], ["performance_status"]])),
                "active": draw(st.booleans()),
                "targets": {
                    "day": draw(
                        st.dictionaries(
                            _NEAR.map(date.isoformat),
                            st.floats(allow_nan=False, allow_infinity=False),
                            max_size=3,
                        )
                    )
                },
            }
            for metric_id in metric_ids
        ]
        tenants.append(
            {
                "tenant_id": tenant_id,
                "identifier": identifier,
                "name": draw(st.text(max_size=200)),
                "active": draw(st.booleans()),
                "cache_enabled": draw(st.booleans()),
                "metrics": metrics,
            }
        )
    return {"tenants": tenants}


@st.composite
def catalog_files(draw: st.DrawFn) -> bytes:
    """A catalog file's bytes: dumped mutations in several encodings, broken YAML, junk."""
    kind = draw(
        st.sampled_from(["valid", "dump", "dump", "dump", "encoded", "text", "bytes", "aliases"])
    )
    if kind == "valid":
        return yaml.safe_dump(draw(valid_catalogs()), allow_unicode=True).encode("utf-8")
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    if kind == "aliases":
        width = draw(st.integers(2, 12))
        lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
        for level in range(1, draw(st.integers(2, 9))):
            refs = ", ".join([f"*a{level - 1}"] * width)
            lines.append(f"a{level}: &a{level} [{refs}]")
        return ("\n".join(lines) + "\ntenants: []\n").encode()
    text = yaml.safe_dump(draw(mutated_catalogs()), allow_unicode=True)
    if kind == "dump":
        cut = draw(st.one_of(st.none(), st.integers(0, len(text))))
        return (text if cut is None else text[:cut]).encode("utf-8")
    encoding = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "utf-8-sig", "latin-1"]))
    return text.encode(encoding, "replace")


@pytest.mark.parametrize("shard", range(CATALOG_SHARDS))
def test_generated_catalog_files_exit_0_or_2_and_bad_ones_write_nothing(
    prepared: Prepared, shard: int
) -> None:
    counter = Counter()
    path = prepared.folder / "generated.yaml"
    examples = CATALOG_EXAMPLES // CATALOG_SHARDS

    @seed(2_000 + shard)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(content=catalog_files(), allow_empty=st.booleans())
    def run(content: bytes, allow_empty: bool) -> None:
        counter.runs += 1
        path.write_bytes(content)
        check(prepared, ["catalog", "load", str(path), *(["--allow-empty"] if allow_empty else [])])

    run()
    print(f"hostile catalogs, shard {shard}: {counter.runs} generated, 0 failures")
    assert counter.runs >= examples


def test_every_run_generates_at_least_the_minimum_of_hostile_inputs() -> None:
    arguments = ARGUMENT_EXAMPLES // ARGUMENT_SHARDS * ARGUMENT_SHARDS
    catalogs = CATALOG_EXAMPLES // CATALOG_SHARDS * CATALOG_SHARDS
    assert arguments + catalogs >= MINIMUM_INPUTS

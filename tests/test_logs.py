"""JSON lines, the rich handler, and redaction in ``fulcrum_sync.logs``."""

from __future__ import annotations

import io
import json
import logging
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any

import pytest
from pydantic import SecretStr

from fulcrum_sync.logs import (
    ALWAYS_PRESENT,
    EVENT_FIELDS,
    NOISY_LOGGERS,
    configure_logging,
    log_event,
)
from fulcrum_sync.secrets import (
    MASK,
    clear_secrets,
    redact,
    register_secret,
    register_secrets_from,
)

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG = logging.getLogger("fulcrum_sync.tests.logs")

CUBE_SECRET = "cube-signing-secret-0123456789"
DB_PASSWORD = "p@ss/w:rd!"
DB_URL = "postgresql+psycopg://fulcrum:p%40ss%2Fw%3Ard%21@db.internal:5432/fulcrum"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJ0ZW5hbnRfaWQiOiJhY21lIiwiZXhwIjoxNzUxMzMwMDAwfQ"
    ".3q2-7t6Ry0mZVbGeJ9vPqLs2rK1x_aHnTzY0cWdEfUo"
)


class TtyStream(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Color(Enum):
    RED = "red"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    clear_secrets()
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, old in noisy.items():
        logging.getLogger(name).setLevel(old)
    logging.captureWarnings(False)
    clear_secrets()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


# --------------------------------------------------------------------------- format choice


def test_auto_picks_json_when_the_stream_is_not_a_tty() -> None:
    assert configure_logging("auto", stream=io.StringIO()) == "json"


def test_auto_picks_rich_on_a_tty() -> None:
    assert configure_logging("auto", stream=TtyStream()) == "rich"


def test_explicit_formats_are_kept_whatever_the_stream() -> None:
    assert configure_logging("json", stream=TtyStream()) == "json"
    assert configure_logging("rich", stream=io.StringIO()) == "rich"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        configure_logging("xml", stream=io.StringIO())  # type: ignore[arg-type]


def test_configuring_twice_keeps_one_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", stream=first)
    configure_logging("json", stream=second)
    LOG.info("once")
    assert first.getvalue() == ""
    assert [line["event"] for line in json_lines(second)] == ["once"]


# --------------------------------------------------------------------------- JSON lines


def test_json_lines_carry_time_level_event_and_the_fields() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    fields: dict[str, Any] = {
        "run_id": 17,
        "run_key": "sync:day:2025-07-01:acme::new_revenue",
        "tenant": "acme",
        "metric": "new_revenue",
        "grain": "day",
        "counts": {"inserted": 90, "updated": 2, "unchanged": 273},
        "duration": 1.84,
        "error": None,
    }
    before = datetime.now(UTC)
    LOG.info("context synced", extra=fields)
    log_event(LOG, "context failed", level=logging.ERROR, tenant="acme", error="boom")

    first, second = json_lines(stream)
    assert set(first) == {"time", "level", "event", "logger", *fields, *ALWAYS_PRESENT}
    assert first["event"] == "context synced"
    assert first["level"] == "info"
    assert first["logger"] == LOG.name
    assert {key: first[key] for key in fields} == fields
    stamp = datetime.fromisoformat(first["time"])
    assert stamp.utcoffset() == timedelta(0)
    assert first["time"].endswith("Z")
    assert abs(stamp - before) < timedelta(seconds=5)
    # Every line carries the core keys; those an event has no value for are null.
    assert second == {
        **dict.fromkeys(ALWAYS_PRESENT),
        "time": second["time"],
        "level": "error",
        "event": "context failed",
        "logger": LOG.name,
        "tenant": "acme",
        "error": "boom",
    }


def test_event_fields_documented_are_the_issue_s() -> None:
    required = {"run_id", "run_key", "tenant", "metric", "grain", "counts", "duration", "error"}
    assert required <= set(EVENT_FIELDS)


def test_json_values_that_json_cannot_take_are_converted() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    log_event(
        LOG,
        "odd values",
        period=date(2025, 6, 30),
        started=datetime(2025, 7, 1, 10, 0, tzinfo=UTC),
        duration=timedelta(seconds=2.5),
        grain=Color.RED,
        value=float("nan"),
        tags={"b"},
        secret_setting=SecretStr("not shown"),
    )
    (line,) = json_lines(stream)
    assert line["period"] == "2025-06-30"
    assert line["started"] == "2025-07-01T10:00:00+00:00"
    assert line["duration"] == 2.5
    assert line["grain"] == "red"
    assert line["value"] == "nan"
    assert line["tags"] == ["b"]
    assert line["secret_setting"] == MASK


def test_log_event_renames_fields_that_clash_with_the_log_record() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    log_event(LOG, "clash", process="sync", module="cube")
    (line,) = json_lines(stream)
    assert line["process_"] == "sync"
    assert line["module_"] == "cube"


def test_an_exception_fills_error_and_traceback() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    try:
        raise ConnectionError("cube unreachable")
    except ConnectionError:
        LOG.exception("sync failed", extra={"tenant": "acme"})
    (line,) = json_lines(stream)
    assert line["level"] == "error"
    assert line["error"] == "ConnectionError: cube unreachable"
    assert "Traceback (most recent call last)" in line["traceback"]
    assert line["tenant"] == "acme"


def test_verbose_switches_debug_on_and_quiet_libraries_back() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    LOG.debug("hidden")
    logging.getLogger("httpx").info("HTTP Request: POST /cubejs-api/v1/load")
    assert stream.getvalue() == ""

    configure_logging("json", verbose=True, stream=stream)
    LOG.debug("shown")
    logging.getLogger("httpx").info("request")
    assert [line["event"] for line in json_lines(stream)] == ["shown", "request"]


def test_warnings_become_json_lines() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old option", DeprecationWarning, stacklevel=1)
    (line,) = json_lines(stream)
    assert line["level"] == "warning"
    assert "old option" in line["event"]


# --------------------------------------------------------------------------- rich


def test_rich_output_is_readable_text_with_the_fields() -> None:
    stream = TtyStream()
    configure_logging("auto", stream=stream)
    log_event(LOG, "context synced", tenant="acme", grain="day")
    text = ANSI.sub("", stream.getvalue())
    assert "context synced" in text
    assert "tenant=acme" in text
    assert "grain=day" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


# --------------------------------------------------------------------------- redaction


def test_registered_secrets_never_reach_json_lines() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    register_secret(SecretStr(CUBE_SECRET))
    register_secret(DB_URL)

    LOG.info("signing with %s", CUBE_SECRET)
    log_event(LOG, "connected", url=DB_URL, nested={"deep": [f"pw={DB_PASSWORD}"]})
    try:
        raise RuntimeError(f"login failed with {DB_PASSWORD} and {CUBE_SECRET}")
    except RuntimeError:
        LOG.exception("store unreachable")

    output = stream.getvalue()
    for secret in (CUBE_SECRET, DB_PASSWORD, "p%40ss%2Fw%3Ard%21", DB_URL):
        assert secret not in output
    signing, connected, failed = json_lines(stream)
    assert signing["event"] == f"signing with {MASK}"
    assert connected["url"] == MASK
    assert connected["nested"] == {"deep": [f"pw={MASK}"]}
    assert failed["error"] == f"RuntimeError: login failed with {MASK} and {MASK}"
    assert CUBE_SECRET not in failed["traceback"]


def test_registered_secrets_never_reach_rich_output() -> None:
    stream = TtyStream()
    configure_logging("rich", stream=stream)
    register_secret(CUBE_SECRET)
    try:
        raise RuntimeError(f"bad secret {CUBE_SECRET}")
    except RuntimeError:
        LOG.exception("cube refused %s", CUBE_SECRET, extra={"error": CUBE_SECRET})
    text = ANSI.sub("", stream.getvalue())
    assert "cube refused" in text
    assert CUBE_SECRET not in text.replace("\n", "")


def test_unregistered_tokens_and_url_passwords_are_masked_anyway() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    LOG.info("authorization %s", JWT)
    LOG.info("Authorization: Bearer abc.def-ghi")
    LOG.info("db postgresql://fulcrum:letmein@db:5432/x and https://u:pw@cube/x")
    LOG.info('settings password=letmein token: "t0k3n" api_key=k3y')
    log_event(LOG, "headers", headers={"Authorization": JWT, "X-Trace": "1"})

    lines = json_lines(stream)
    assert lines[0]["event"] == f"authorization {MASK}"
    assert lines[1]["event"] == f"Authorization: Bearer {MASK}"
    assert (
        lines[2]["event"] == f"db postgresql://fulcrum:{MASK}@db:5432/x and https://u:{MASK}@cube/x"
    )
    assert lines[3]["event"] == f"settings password={MASK} token: {MASK} api_key={MASK}"
    assert lines[4]["headers"] == {"Authorization": MASK, "X-Trace": "1"}


def test_pem_private_keys_are_masked() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    assert redact(f"key: {pem} end") == f"key: {MASK} end"


def test_redaction_leaves_ordinary_text_alone() -> None:
    register_secret("abc")  # shorter than MIN_SECRET_LENGTH: not masked by value
    text = (
        "fetched orders.total_amount by orders.created_at.day for acme::new_revenue "
        "from https://cube.example.com/cubejs-api/v1/load (3 tokens left, abc)"
    )
    assert redact(text) == text


def test_register_secrets_from_settings_like_models() -> None:
    from pydantic import BaseModel

    class Settings(BaseModel):
        database_url: SecretStr
        cube_api_secret: SecretStr
        cube_api_url: str

    settings = Settings(
        database_url=SecretStr(DB_URL),
        cube_api_secret=SecretStr(CUBE_SECRET),
        cube_api_url="https://cube.example.com",
    )
    register_secrets_from(settings)
    assert redact(f"{CUBE_SECRET} {DB_PASSWORD} {settings.cube_api_url}") == (
        f"{MASK} {MASK} https://cube.example.com"
    )


def test_a_secret_registered_after_a_text_was_logged_is_masked_from_then_on() -> None:
    """Redaction is cached per text; registering a secret invalidates what was cached."""
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    text = f"token issued: {CUBE_SECRET[:40]}"
    log_event(LOG, "first", detail=text)
    register_secret(CUBE_SECRET[:40])
    log_event(LOG, "second", detail=text)
    first, second = json_lines(stream)
    assert first["detail"] == text  # nothing registered yet, nothing secret-looking
    assert second["detail"] == f"token issued: {MASK}"


def test_log_event_builds_no_record_that_no_handler_writes() -> None:
    """At a terminal (quiet: warnings and up) an info event costs no record at all."""
    built: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        built.append(record)
        return record

    quiet = logging.getLogger("fulcrum_sync.tests.quiet")  # its own handler, as the root's
    handler = logging.StreamHandler(TtyStream())  # (pytest's capture handler takes all)
    handler.setLevel(logging.WARNING)
    quiet.addHandler(handler)
    quiet.propagate = False
    logging.setLogRecordFactory(counting)
    try:
        log_event(quiet, "context synced", run_key="k")
        assert built == []
        log_event(quiet, "context failed", logging.ERROR, run_key="k")
        assert [r.getMessage() for r in built] == ["context failed"]
    finally:
        logging.setLogRecordFactory(factory)
        quiet.removeHandler(handler)
        quiet.propagate = True

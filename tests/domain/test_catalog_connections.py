"""A tenant's ``cube:`` and ``cache:`` blocks: validated, never holding a secret; and
``read_secret_ref``, which reads the secret a block names and registers it for redaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fulcrum_sync.catalog import CacheDestination, CubeConnection, parse_catalog
from fulcrum_sync.domain import CatalogError, InputError
from fulcrum_sync.secrets import clear_secrets, read_secret_ref, redact

SECRET = "s3cr3t-Valu3-that-must-not-leak"

CATALOG = """
tenants:
  - tenant_id: 1
    identifier: acme
    cube:
      url: https://cube.acme.example.com/
      secret_env: ACME_CUBE_SECRET
    cache:
      account: acme-xy12345
      user: FULCRUM_LOADER
      database: ACME
      schema: CACHE
      warehouse: LOAD_XS
      role: LOADER
      password_env: ACME_SF_PASSWORD
    metrics:
      - {metric_id: orders, measure: o.count, time_dimension: o.created_at}
  - tenant_id: 2
    identifier: beta
    cube: {url: "http://127.0.0.1:4000", token_file: /var/run/secrets/beta/cube-token}
    cache:
      account: beta-1
      user: LOADER
      database: BETA
      schema: CACHE
      private_key_file: /var/run/secrets/beta/snowflake.p8
      passphrase_env: BETA_KEY_PASSPHRASE
  - {tenant_id: 3, identifier: gamma}
"""


@pytest.fixture(autouse=True)
def _forget_secrets() -> None:
    clear_secrets()


def test_blocks_parse_and_default_to_none() -> None:
    acme, beta, gamma = parse_catalog(CATALOG).tenants
    assert acme.cube == CubeConnection(
        url="https://cube.acme.example.com", secret_env="ACME_CUBE_SECRET"
    )
    assert acme.cube.auth == "secret" and acme.cube.reference == "secret_env ACME_CUBE_SECRET"
    assert acme.cache is not None and acme.cache.schema_name == "CACHE"
    assert acme.cache.auth == "password"
    assert acme.cache.key == ("acme-xy12345", "FULCRUM_LOADER", "LOADER", "LOAD_XS")
    assert beta.cube is not None and beta.cube.auth == "token"
    assert beta.cache is not None and beta.cache.auth == "key pair"
    assert beta.cache.references == [
        "private_key_file /var/run/secrets/beta/snowflake.p8",
        "passphrase_env BETA_KEY_PASSPHRASE",
    ]
    assert gamma.cube is None and gamma.cache is None


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ("cube", "secret"),
        ("cube", "token"),
        ("cache", "password"),
        ("cache", "private_key"),
        ("cache", "passphrase"),
        ("tenant", "password"),
    ],
)
def test_a_secret_inline_is_refused_naming_the_field_not_the_value(block: str, field: str) -> None:
    cube = f"    cube: {{url: 'https://c.example.com', secret_env: A_SECRET, {field}: {SECRET}}}\n"
    cache = (
        "    cache: {account: a, user: u, database: D, schema: S, password_env: P, "
        f"{field}: {SECRET}}}\n"
    )
    text = "tenants:\n  - tenant_id: 1\n    identifier: acme\n"
    text += {"cube": cube, "cache": cache, "tenant": f"    {field}: {SECRET}\n"}[block]
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "c.yaml")
    message = str(caught.value)
    assert SECRET not in message
    assert "tenants[0](acme)" in message
    assert f"{block}.{field} holds a secret in the catalog" in message
    assert f"{field}_env: VARIABLE" in message


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({}, "cube needs exactly one of secret_env, secret_file, token_env, token_file (got none)"),
        (
            {"secret_env": "A", "token_env": "B"},
            "cube needs exactly one of secret_env, secret_file, token_env, token_file "
            "(got secret_env, token_env)",
        ),
        ({"secret_env": "1BAD"}, "expected the name of an environment variable"),
        ({"secret_env": SECRET}, "expected the name of an environment variable"),
    ],
)
def test_cube_block_needs_exactly_one_auth_reference(fields: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CubeConnection(url="https://c.example.com", **fields)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    "url", ["ftp://c.example.com", "https://user:pw@c.example.com", "c.example.com", ""]
)
def test_cube_url_must_be_http_without_credentials(url: str) -> None:
    with pytest.raises(ValidationError):
        CubeConnection(url=url, secret_env="X")


def test_cache_block_rules() -> None:
    base = {"account": "a", "user": "u", "database": "D", "schema": "S"}
    with pytest.raises(ValidationError, match="cache needs exactly one of password_env"):
        CacheDestination.model_validate(base)
    with pytest.raises(ValidationError, match="a passphrase goes with private_key"):
        CacheDestination.model_validate({**base, "password_env": "P", "passphrase_env": "Q"})
    with pytest.raises(ValidationError, match="String should match pattern"):
        CacheDestination.model_validate({**base, "database": 'D"; drop', "password_env": "P"})
    ok = CacheDestination.model_validate({**base, "private_key_env": "K"})
    assert ok.auth == "key pair" and ok.warehouse is None and ok.role is None


def test_read_secret_ref_reads_a_variable_and_masks_it_everywhere() -> None:
    value = read_secret_ref(
        "ACME_CUBE_SECRET", None, what="x", environ={"ACME_CUBE_SECRET": SECRET}
    )
    assert value.get_secret_value() == SECRET
    assert SECRET not in repr(value)
    assert redact(f"failed with {SECRET} in it") == "failed with *** in it"


def test_read_secret_ref_reads_a_mounted_file_without_its_line_break(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    assert read_secret_ref(None, str(path), what="x").get_secret_value() == SECRET
    assert SECRET not in redact(f"token {SECRET}")


def test_read_secret_ref_registers_each_line_of_a_pem(tmp_path: Path) -> None:
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ"
    pem = f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n-----END ENCRYPTED PRIVATE KEY-----\n"
    (tmp_path / "k.p8").write_text(pem)
    read_secret_ref(None, str(tmp_path / "k.p8"), what="x")
    assert redact(f"echoed line: {body}") == "echoed line: ***"


@pytest.mark.parametrize(
    ("env", "environ", "message"),
    [
        ("ACME_SF_PASSWORD", {}, "environment variable ACME_SF_PASSWORD is not set; set it"),
        ("ACME_SF_PASSWORD", {"ACME_SF_PASSWORD": ""}, "ACME_SF_PASSWORD is empty"),
    ],
)
def test_a_missing_variable_is_a_configuration_error_naming_it(
    env: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(InputError) as caught:
        read_secret_ref(env, None, what="tenant acme's Snowflake password", environ=environ)
    assert str(caught.value).startswith("tenant acme's Snowflake password cannot be read: ")
    assert redact(str(caught.value)) == str(caught.value)  # nothing in it reads as a secret
    assert message in str(caught.value)


def test_a_missing_or_empty_file_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(InputError, match=f"w cannot be read: file {missing} \\(No such file"):
        read_secret_ref(None, str(missing), what="w")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(InputError, match="is empty; mount the secret there"):
        read_secret_ref(None, str(tmp_path / "empty"), what="w")


def test_cube_connection_reads_its_credential() -> None:
    cube = CubeConnection(url="https://c.example.com", token_env="ACME_TOKEN")
    with pytest.raises(InputError, match="tenant acme's Cube token cannot be read: environment"):
        cube.read_credential("acme")

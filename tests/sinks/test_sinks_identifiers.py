"""Cache table names: mapping, validation, quoting, shortening and collisions."""

from __future__ import annotations

import pytest

from fulcrum_sync.domain import Grain, InputError
from fulcrum_sync.sinks.identifiers import (
    cache_table_name,
    check_collisions,
    normalize_part,
    quote,
)

HOSTILE = 'x"; drop table y; --'


@pytest.mark.parametrize(
    ("tenant", "metric", "grain", "expected"),
    [
        ("acme", "new_revenue", Grain.DAY, "CACHE_ACME_NEW_REVENUE_DAY"),
        ("acme", "new-revenue", Grain.WEEK, "CACHE_ACME_NEW_REVENUE_WEEK"),
        ("acme.eu", "mrr", Grain.MONTH, "CACHE_ACME_EU_MRR_MONTH"),
        ("3m", "_x", Grain.DAY, "CACHE_3M__X_DAY"),
        ("Acme", "Orders", "daily", "CACHE_ACME_ORDERS_DAY"),
    ],
)
def test_cache_table_name(tenant: str, metric: str, grain: Grain, expected: str) -> None:
    assert cache_table_name(tenant, metric, grain) == expected


@pytest.mark.parametrize(
    "bad", [HOSTILE, "", "a b", "x;y", "a'b", "naïve", "a/b", "a" * 64, 'a"b', "a\nb", "abc\n"]
)
def test_unsafe_parts_are_refused(bad: str) -> None:
    with pytest.raises(InputError, match="invalid tenant"):
        cache_table_name(bad, "orders", Grain.DAY)
    with pytest.raises(InputError, match="invalid metric"):
        cache_table_name("acme", bad, Grain.DAY)


def test_normalize_part_maps_dashes_and_dots() -> None:
    assert normalize_part("new-revenue.v2", "metric") == "NEW_REVENUE_V2"


def test_long_names_are_shortened_with_a_stable_hash() -> None:
    tenant, metric = "t" * 63, "m" * 63
    name = cache_table_name(tenant, metric, Grain.DAY, max_length=63)
    assert len(name) == 63
    assert name.startswith("CACHE_TTTT")
    assert name == cache_table_name(tenant, metric, Grain.DAY, max_length=63)
    other = cache_table_name(tenant, "m" * 62 + "n", Grain.DAY, max_length=63)
    assert other != name and len(other) == 63
    assert len(cache_table_name(tenant, metric, Grain.DAY)) == 6 + 63 + 1 + 63 + 4


def test_quote_accepts_only_plain_identifiers() -> None:
    assert quote("CACHE_ACME_ORDERS_DAY") == '"CACHE_ACME_ORDERS_DAY"'
    for bad in (HOSTILE, "a b", "1abc", "", 'a"b', "ABC\n"):
        with pytest.raises(InputError):
            quote(bad)


def test_collisions_are_refused_naming_both_contexts() -> None:
    check_collisions([("acme::a", "CACHE_ACME_A_DAY"), ("acme::b", "CACHE_ACME_B_DAY")])
    with pytest.raises(InputError, match=r"acme::new-revenue and acme::new_revenue"):
        check_collisions(
            [
                ("acme::new-revenue", "CACHE_ACME_NEW_REVENUE_DAY"),
                ("acme::new_revenue", "CACHE_ACME_NEW_REVENUE_DAY"),
            ]
        )
    with pytest.raises(InputError, match="share the cache table"):
        check_collisions([("a_b::c", "CACHE_A_B_C_DAY"), ("a::b_c", "cache_a_b_c_day")])
    clash = [
        ("a_b::c", "CACHE_A_B_C_DAY"),
        ("a::b_c", "CACHE_A_B_C_DAY"),
        ("x::y", "CACHE_X_Y_DAY"),
    ]
    check_collisions(clash, only={"x::y"})  # a clash elsewhere does not block x::y
    with pytest.raises(InputError, match="a::b_c and a_b::c"):
        check_collisions(clash, only={"a::b_c"})

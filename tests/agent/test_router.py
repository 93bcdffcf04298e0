"""The pure router: stable buckets, weighted splits, monotone ramps, shadows and segments."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.router import BUCKETS, Router, RouteSpec, Segment, bucket, share_of
from core.vocabulary import SegmentSource

KEYS = [f"user-{i}" for i in range(20_000)]


def two_way(challenger: int, salt: str = "salt-a") -> Router:
    # Snapshot order: newest (the challenger) first, then the champion.
    return Router([RouteSpec(challenger, "challenger"), RouteSpec(100 - challenger, "champion")], salt)


def test_bucket_is_stable_across_processes() -> None:
    keys = ["alice", "bob", "", "ключ", "x" * 500]
    code = (
        "from agent.router import bucket; import json, sys; "
        "print(json.dumps([bucket(k, 'pepper') for k in json.loads(sys.argv[1])]))"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(keys)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [bucket(k, "pepper") for k in keys]
    assert all(0 <= bucket(k, "pepper") < BUCKETS for k in keys)


def test_buckets_are_the_same_in_every_release() -> None:
    """Sticky assignment must survive an upgrade: agents of two releases side by side put a key in
    one bucket. BLAKE2b-64 keyed with the salt, big-endian, modulo 10,000 (values from the BLAKE2
    specification, which no library version changes)."""
    assert [bucket(k, "pepper") for k in ("user-1", "user-2", "checkout-42")] == [8020, 8333, 2862]


def test_salt_changes_the_assignment() -> None:
    a = np.array([bucket(k, "salt-a") for k in KEYS[:2000]])
    b = np.array([bucket(k, "salt-b") for k in KEYS[:2000]])
    assert (a != b).mean() > 0.99


def test_buckets_are_uniform() -> None:
    buckets = np.array([bucket(k, "s") for k in KEYS])
    counts = np.histogram(buckets, bins=10, range=(0, BUCKETS))[0]
    expected = len(KEYS) / 10
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_keyed_split_follows_the_weights() -> None:
    router = two_way(10)
    chosen = np.array([router.route(k) for k in KEYS])
    assert abs((chosen == 0).mean() - 0.10) < 0.01
    assert share_of(router, 0) == 0.10


def test_same_key_same_route() -> None:
    router = two_way(30)
    assert all(router.route(k) == router.route(k) for k in KEYS[:500])
    rebuilt = two_way(30)
    assert [router.route(k) for k in KEYS[:500]] == [rebuilt.route(k) for k in KEYS[:500]]


def test_requests_without_a_key_split_at_random_by_weight() -> None:
    router = two_way(25)
    chosen = np.array([router.route("") for _ in range(20_000)])
    assert abs((chosen == 0).mean() - 0.25) < 0.02


@settings(max_examples=60, deadline=None)
@given(
    low=st.integers(min_value=0, max_value=100),
    high=st.integers(min_value=0, max_value=100),
    salt=st.text(min_size=1, max_size=16),
)
def test_ramping_the_newest_version_only_moves_keys_toward_it(low: int, high: int, salt: str) -> None:
    low, high = sorted((low, high))
    before, after = two_way(low, salt), two_way(high, salt)
    for key in KEYS[:400]:
        if before.route(key) == 0:
            assert after.route(key) == 0, f"{key} left the challenger when it went {low} -> {high}"
        if after.route(key) == 1:
            assert before.route(key) == 1


def test_ramp_keeps_challenger_keys_at_every_step() -> None:
    keys = KEYS[:5000]
    on_challenger: set[str] = set()
    for share in (10, 20, 50, 100):
        router = two_way(share)
        now = {k for k in keys if router.route(k) == 0}
        assert on_challenger <= now
        assert abs(len(now) / len(keys) - share / 100) < 0.02
        on_challenger = now


def test_shadow_routes_never_answer() -> None:
    for shadow_weight in (0, 100):  # whatever weight a shadow carries, it only scores copies
        router = Router([RouteSpec(shadow_weight, "shadow"), RouteSpec(100, "champion")], "s")
        assert router.shadows == (0,)
        assert {router.route(k) for k in KEYS[:1000]} == {1}
        assert set(router.route_many([], 1000).tolist()) == {1}
        assert share_of(router, 0) == 0.0 and share_of(router, 1) == 1.0


def test_with_every_weight_at_zero_the_champion_answers() -> None:
    router = Router([RouteSpec(0, "champion"), RouteSpec(0, "challenger")], "s")
    assert {router.route(k) for k in KEYS[:100]} == {0}
    with pytest.raises(ValueError, match="needs a champion"):
        Router([RouteSpec(0, "challenger"), RouteSpec(0, "shadow")], "s")


def test_route_many_matches_route_for_keys() -> None:
    router = Router([RouteSpec(20, "challenger"), RouteSpec(30, "challenger"), RouteSpec(50, "champion")], "s")
    keys = KEYS[:3000]
    assert router.route_many(keys, len(keys)).tolist() == [router.route(k) for k in keys]
    random_rows = router.route_many([], 30_000)
    shares = np.bincount(random_rows, minlength=3) / 30_000
    assert np.allclose(shares, [0.2, 0.3, 0.5], atol=0.02)


def test_segment_rules_send_requests_outside_the_segment_to_the_champion() -> None:
    segments = [
        Segment("country", values=frozenset({"fr", "de"})),
        Segment("age", has_range=True, low=18, high=30),
    ]
    router = Router([RouteSpec(100, "challenger"), RouteSpec(0, "champion")], "s", segments)
    inside = {"country": "fr", "age": "25"}
    assert router.route("k", inside) == 0
    assert router.route("k", {"country": "us", "age": "25"}) == 1
    assert router.route("k", {"country": "fr", "age": "31"}) == 1
    # `age=18..30` includes both ends, and nothing beyond them
    for age, route in (("18", 0), ("30", 0), ("17.99", 1), ("30.01", 1)):
        assert router.route("k", {"country": "de", "age": age}) == route, age
    assert router.route("k", {"country": "fr", "age": "young"}) == 1
    assert router.route("k", {"country": "fr"}) == 1
    assert router.route("k", None) == 1
    # Batch rows carry no attributes: without the features the rules name they stay on the champion.
    assert set(router.route_many(["a", "b"], 2).tolist()) == {1}


def test_rules_on_features_route_each_batch_row_by_its_own_values() -> None:
    segments = [
        Segment("country", values=frozenset({"de", "fr"})),
        Segment("age", has_range=True, low=18, high=30),
    ]
    router = Router([RouteSpec(100, "challenger"), RouteSpec(0, "champion")], "s", segments)
    assert router.features == ("age", "country") and router.fixed == -1
    country = np.array(["de", "us", "fr", "de", "de", "de", None], dtype=object)
    age = np.array([25.0, 25.0, 18.0, 30.0, 17.5, np.nan, 20.0])
    chosen = router.route_many([], 7, {"country": country, "age": age})
    assert chosen.tolist() == [0, 1, 0, 0, 1, 1, 1]
    # an integer or text column of ages is read as numbers too; a row of text that is no number is outside
    assert router.route_many([], 3, {"country": country[:3], "age": np.array([30, 31, 18])}).tolist() == [0, 1, 0]
    ages = np.array(["30", "young", "18"], dtype=object)
    germans = np.array(["de", "de", "de"], dtype=object)
    assert router.route_many([], 3, {"country": germans, "age": ages}).tolist() == [0, 1, 0]
    # a column missing, or of another length, puts no row in the segment
    assert router.route_many([], 2, {"country": country[:2]}).tolist() == [1, 1]
    # one Predict call with several rows takes part only when every row matches
    assert router.route("k", None, {"country": country[[0, 3]], "age": age[[0, 3]]}) == 0
    assert router.route("k", None, {"country": country[:2], "age": age[:2]}) == 1
    assert router.route("k", None, {"country": country[:0], "age": age[:0]}) == 1


def test_an_attribute_the_request_sends_decides_before_a_feature_of_that_name() -> None:
    """No prefix: the attribute when sent, else the feature; `attribute.` and `feature.` pin one."""
    features = {"country": np.array(["de"], dtype=object), "hour": np.array([9], dtype=np.int64)}
    either = Router(
        [RouteSpec(100, "challenger"), RouteSpec(0, "champion")], "s", [Segment("country", frozenset({"de"}))]
    )
    assert either.route("k", {"country": "us"}, features) == 1  # the attribute says us
    assert either.route("k", {}, features) == 0  # no attribute: the feature says de
    pinned = [Segment("country", frozenset({"de"}), source=SegmentSource.FEATURE)]
    by_feature = Router([RouteSpec(100, "challenger"), RouteSpec(0, "champion")], "s", pinned)
    assert by_feature.route("k", {"country": "us"}, features) == 0
    assert by_feature.route("k", {"country": "de"}, None) == 1
    attribute = [Segment("country", frozenset({"de"}), source=SegmentSource.ATTRIBUTE)]
    by_attribute = Router([RouteSpec(100, "challenger"), RouteSpec(0, "champion")], "s", attribute)
    assert by_attribute.features == ()
    assert by_attribute.route("k", {}, features) == 1 and by_attribute.route("k", {"country": "de"}) == 0
    assert by_attribute.route_many([], 1, features).tolist() == [1]
    # values of a numeric feature compare as numbers: 9 is "9" and "9.0"; true is 1
    hours = Router(
        [RouteSpec(100, "challenger"), RouteSpec(0, "champion")], "s", [Segment("hour", frozenset({"9.0", "10"}))]
    )
    assert hours.route_many([], 3, {"hour": np.array([9, 10, 11])}).tolist() == [0, 0, 1]
    flags = Router([RouteSpec(100, "challenger"), RouteSpec(0, "champion")], "s", [Segment("vip", frozenset({"true"}))])
    assert flags.route_many([], 2, {"vip": np.array([True, False])}).tolist() == [0, 1]


def test_outside_the_segment_goes_to_the_champion_wherever_it_is_listed() -> None:
    """The champion first in the snapshot (index 0) is still the champion (a mutant that took index
    0 for "no champion yet" sent everyone outside the segment to the challenger)."""
    segments = [Segment("country", values=frozenset({"fr"}))]
    router = Router([RouteSpec(90, "champion"), RouteSpec(10, "challenger")], "s", segments)
    assert router.champion == 0
    assert {router.route(k, {"country": "us"}) for k in KEYS[:200]} == {0}
    assert set(router.route_many(KEYS[:50], 50).tolist()) == {0}
    assert share_of(router, 0) == 0.9 and share_of(router, 1) == 0.1


def test_a_champion_alone_takes_everything() -> None:
    router = Router([RouteSpec(100, "champion")], uuid.uuid4().hex)
    assert {router.route(k) for k in KEYS[:100]} == {0}
    assert router.route_many(KEYS[:10], 10).tolist() == [0] * 10


def test_a_value_list_on_a_numeric_feature_matches_exactly_those_numbers() -> None:
    """`--segment feature.hour=9,10` on an integer feature: a Predict's row is in the segment when
    its number is listed (9 and 9.0 alike), and `true` names a bool feature's True."""
    routes = [RouteSpec(100, "challenger"), RouteSpec(0, "champion")]
    hours = Router(routes, "s", [Segment("hour", frozenset({"9", "10"}), source=SegmentSource.FEATURE)])
    assert hours.route("k", None, {"hour": np.array([9], dtype=np.int64)}) == 0
    assert hours.route("k", None, {"hour": np.array([10.0])}) == 0
    assert hours.route("k", None, {"hour": np.array([11], dtype=np.int64)}) == 1
    assert hours.route("k", None, {"hour": np.array([9.5])}) == 1
    flags = Router(routes, "s", [Segment("vip", frozenset({"true"}), source=SegmentSource.FEATURE)])
    assert flags.route("k", None, {"vip": np.array([True])}) == 0
    assert flags.route("k", None, {"vip": np.array([False])}) == 1


def test_a_records_values_are_tested_against_the_rules_numbers() -> None:
    """A record sends a feature as text, a number, an integer or a bool (agent/segments.py reads
    them into a column of Python values): `feature.hour=9,10` takes the record whose hour is 9 or
    9.0 and not 11; `true` names a flag's True; a range takes a number between its ends."""
    routes = [RouteSpec(100, "challenger"), RouteSpec(0, "champion")]

    def record_column(*values: object) -> np.ndarray:
        column = np.empty(len(values), dtype=object)
        column[:] = list(values)
        return column

    hours = Router(routes, "s", [Segment("hour", frozenset({"9", "10"}), source=SegmentSource.FEATURE)])
    for value, route in ((9, 0), (9.0, 0), (10, 0), (11, 1), (9.5, 1), ("9", 0), ("11", 1), (None, 1)):
        assert hours.route("k", None, {"hour": record_column(value)}) == route, value
    assert hours.route_many([], 4, {"hour": record_column(9, 11, 10.0, None)}).tolist() == [0, 1, 0, 1]
    flags = Router(routes, "s", [Segment("vip", frozenset({"true"}), source=SegmentSource.FEATURE)])
    assert flags.route_many([], 2, {"vip": record_column(True, False)}).tolist() == [0, 1]
    ages = Router(routes, "s", [Segment("age", has_range=True, low=18, high=30, source=SegmentSource.FEATURE)])
    assert ages.route_many([], 5, {"age": record_column(18, 25.5, 30, 31, 17)}).tolist() == [0, 0, 0, 1, 1]


def test_without_a_champion_the_oldest_live_version_stands_in_for_it() -> None:
    """This control plane always sends a champion, but an agent must serve any snapshot it can: one
    without a champion routes by weight, and what would go to the champion (requests outside the
    segment) goes to the oldest live version, the last in snapshot order (newest first)."""
    segments = [Segment("country", values=frozenset({"fr"}))]
    router = Router([RouteSpec(60, "challenger"), RouteSpec(40, "challenger"), RouteSpec(0, "shadow")], "s", segments)
    assert router.champion == 1
    assert {router.route(k, {"country": "us"}) for k in KEYS[:200]} == {1}
    assert set(router.route_many(KEYS[:50], 50).tolist()) == {1}  # batch rows without the feature
    inside = [router.route(k, {"country": "fr"}) for k in KEYS[:2000]]
    assert abs(inside.count(0) / len(inside) - 0.6) < 0.05
    alone = Router([RouteSpec(100, "challenger")], "s", segments)
    assert alone.champion == 0
    assert {alone.route(k, {"country": c}) for k in KEYS[:50] for c in ("fr", "us")} == {0}


def test_a_one_percent_step_takes_one_percent_of_the_keys() -> None:
    """The smallest step a plan can take (`--plan 1,...`): 1% is a live route, 100 of 10,000 buckets."""
    router = two_way(1)
    assert router.live == (0, 1) and share_of(router, 0) == 0.01
    chosen = np.array([router.route(k) for k in KEYS])
    assert 0.005 < (chosen == 0).mean() < 0.015


def test_a_salt_of_any_length_routes() -> None:
    """BLAKE2b takes a key of at most 64 bytes: a longer salt is keyed on its first 64 bytes
    (a 200-character salt, or 40 two-byte characters past the limit, still routes)."""
    for salt, head in (("s" * 200, "s" * 64), ("é" * 40, "é" * 32)):
        assert [bucket(k, salt) for k in KEYS[:50]] == [bucket(k, head) for k in KEYS[:50]]
        assert Router([RouteSpec(50, "challenger"), RouteSpec(50, "champion")], salt).route("user-1") in (0, 1)

import hashlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.draws import algorithm
from core.errors import ValidationFailed

SEED = bytes(range(32))


def _rule(**kw):
    return algorithm.parse_rule({"strata": [{"name": "全部", **kw}]})


def test_recipe_in_a_few_lines_matches():
    """The public recipe, written out independently, gives the same selection."""
    pool = [(f"ID{i:04d}", "全部") for i in range(200)]
    fs = hashlib.sha256(SEED + "福彩3D 2026-12-02: 123".encode()).digest()
    assert algorithm.final_seed(SEED, "福彩3D 2026-12-02: 123") == fs
    expect = sorted(
        pool, key=lambda c: hashlib.sha256(fs + b"LJ-2026-001\x00" + c[0].encode()).digest()
    )[:10]
    got = algorithm.select(pool, _rule(ratio="0.05"), fs, "LJ-2026-001")
    assert got == [c[0] for c in expect]


def test_pool_hash_is_sorted_lines_without_trailing_newline():
    pool = [("B", "s1"), ("A", "s2")]
    assert algorithm.pool_hash(pool) == hashlib.sha256(b"A,s2\nB,s1").hexdigest()
    assert algorithm.pool_csv(pool) == "id,stratum\nA,s2\nB,s1\n"


@pytest.mark.parametrize(
    ("ratio", "rounding", "n", "k"),
    [
        ("0.05", "half_up", 30, 2),  # 1.5 -> 2
        ("0.05", "half_up", 29, 1),  # 1.45 -> 1
        ("0.05", "up", 21, 2),  # 1.05 -> 2 ("不少于 5%")
        ("0.05", "down", 39, 1),  # 1.95 -> 1 (cap)
        (
            "0.1",
            "half_up",
            5,
            1,
        ),  # 0.5 -> 1, exact decimal (float would give 0.5000000001 or 0.49999)
        (
            "0.03",
            "half_up",
            50,
            2,
        ),  # 1.5 -> 2; float 0.03*50 = 1.5 exactly? decimal makes it certain
    ],
)
def test_quota_rounding(ratio, rounding, n, k):
    assert (
        algorithm.quota(algorithm.StratumRule(name="s", ratio=Decimal(ratio), rounding=rounding), n)
        == k
    )


def test_quota_min_and_cap():
    assert algorithm.quota(algorithm.StratumRule(name="s", ratio=Decimal("0.01"), min=3), 10) == 3
    assert algorithm.quota(algorithm.StratumRule(name="s", count=50), 7) == 7


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"strata": [{"name": "a", "ratio": "1.5"}]}, "不超过 100%"),
        ({"strata": [{"name": "a"}]}, "比例或数量"),
        ({"strata": [{"name": "a", "ratio": "0.1", "count": 3}]}, "比例或数量"),
        ({"strata": []}, "至少要有一个分层"),
        ({"strata": [{"name": "a", "count": 1}, {"name": "a", "count": 1}]}, "不能重复"),
    ],
)
def test_bad_rules_have_chinese_errors(data, message):
    with pytest.raises(ValidationFailed, match=message):
        algorithm.parse_rule(data)


def test_strata_membership_in_rule_order():
    rule = algorithm.parse_rule(
        {
            "strata": [
                {"name": "高风险", "risk_levels": ["D"], "flags": ["投诉举报"], "ratio": "0.2"},
                {"name": "其他", "ratio": "0.05"},
            ]
        }
    )
    assert rule.stratum_of("D", []) == "高风险"
    assert rule.stratum_of("A", ["投诉举报"]) == "高风险"
    assert rule.stratum_of("A", []) == "其他"


@given(
    st.sets(st.text(alphabet="0123456789ABCDEF", min_size=4, max_size=8), min_size=1, max_size=60),
    st.integers(0, 60),
)
def test_selection_is_the_k_smallest_and_order_independent(ids, count):
    pool = [(i, "全部") for i in ids]
    rule = _rule(count=count)
    a = algorithm.select(pool, rule, SEED, "T")
    b = algorithm.select(list(reversed(pool)), rule, SEED, "T")
    assert a == b and len(a) == min(count, len(ids))
    assert a == algorithm.order_by_key(sorted(ids), SEED, "T")[: len(a)]


def test_each_stratum_draws_its_own_quota():
    pool = [(f"A{i}", "甲") for i in range(100)] + [(f"B{i}", "乙") for i in range(10)]
    rule = algorithm.parse_rule(
        {"strata": [{"name": "甲", "ratio": "0.05"}, {"name": "乙", "count": 3}]}
    )
    sel = algorithm.select(pool, rule, SEED, "T")
    assert sum(s.startswith("A") for s in sel) == 5 and sum(s.startswith("B") for s in sel) == 3


def test_beacon_changes_the_selection():
    pool = [(f"X{i}", "全部") for i in range(1000)]
    rule = _rule(count=10)
    assert algorithm.select(pool, rule, algorithm.final_seed(SEED, "1"), "T") != algorithm.select(
        pool, rule, algorithm.final_seed(SEED, "2"), "T"
    )


@pytest.mark.parametrize("k", [1, 7, 250, 2000, 4999])
def test_k_smallest_shortcut_is_exact(k):
    """The bounded pre-filter must give exactly what a full sort gives."""
    ids = [f"T{i}" for i in range(5000)]
    keys = algorithm.keys_for(ids, SEED, "T")
    assert algorithm._k_smallest(keys, ids, k) == sorted(zip(keys, ids, strict=True))[:k]

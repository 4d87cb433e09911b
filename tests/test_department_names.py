"""The department an officer names in chat (退回 … 部门, 移送 … 部门) or the operator names
on the command line: code, full name, short name, or the informal name people say — taken only
when it fits one department alone."""

from __future__ import annotations

import pytest

from core.department_names import ambiguous, looks_like_a_name, named, one_off, unknown
from core.models import Department
from core.synthetic import DEPARTMENTS


def _county() -> list[Department]:
    """The synthetic county's 20 departments (core.synthetic), with ids."""
    return [
        Department(id=n, code=code, name=name, short_name=short)
        for n, (code, name, short, _market, _items) in enumerate(DEPARTMENTS, 1)
    ]


@pytest.mark.parametrize(
    ("word", "code"),
    [
        ("WJ", "WJ"),
        ("wj", "WJ"),
        ("县卫生健康局", "WJ"),
        ("卫健", "WJ"),
        ("卫健委", "WJ"),  # 003's member list: 旗卫健委
        ("卫健局", "WJ"),
        ("县卫健委", "WJ"),
        ("卫生健康委员会", "WJ"),
        ("市场监管局", "SJ"),
        ("县市场监管局", "SJ"),
        ("发改委", "FG"),  # 旗发改委
        ("人社局", "RS"),  # 旗人社局
        ("住建局", "ZJ"),  # 旗住建局
        ("林草局", "LC"),  # 旗林草局
        ("文旅局", "WL"),  # 旗文旅局
        ("税务局", "SWJ"),  # 旗税务局
        ("应急管理局", "YJ"),  # 旗应急管理局
    ],
)
def test_formal_and_informal_names_find_the_department(word: str, code: str) -> None:
    assert [d.code for d in named(_county(), word)] == [code]


@pytest.mark.parametrize(
    "word",
    [
        "缺少",
        "现场照片不清",
        "卫",
        "局",
        "",
        "  ",
        "市市场监管局",
        "市卫健委",
        "州公安局",
    ],
)
def test_words_that_name_no_department(word: str) -> None:
    """Another level's body (the city's 市市场监管局) is not the county's department."""
    assert named(_county(), word) == []


def test_a_name_for_the_other_form_of_the_organ_fits_a_committee() -> None:
    """卫健委 and 卫健局 name 县卫生健康委员会 as well as 县卫生健康局 (counties differ in which
    they have); a department without a short name is found by its full name's abbreviation."""
    committee = Department(id=1, code="WJ", name="县卫生健康委员会", short_name="")
    for word in ("卫健委", "卫健局", "卫生健康委", "县卫生健康委员会"):
        assert named([committee], word) == [committee]


def test_an_informal_name_fitting_two_departments_is_not_taken() -> None:
    """卫生局 fits 县卫生健康局 and 县卫生监督所 alike: both are returned for the caller to
    refuse, with the full names to choose from; the exact short name still decides."""
    health = Department(id=1, code="WJ", name="县卫生健康局", short_name="卫健")
    watch = Department(id=2, code="WS", name="县卫生监督所", short_name="卫监")
    assert named([health, watch], "卫生局") == [health, watch]
    assert ambiguous("卫生局", [health, watch]) == (
        "“卫生局”可以指县卫生健康局、县卫生监督所，请写部门全称、简称或代码"
    )
    assert named([health, watch], "卫健") == [health]
    assert named([health, watch], "卫监") == [watch]


@pytest.mark.parametrize(
    ("word", "code"),
    [
        ("环保", "HB"),
        ("环保局", "HB"),
        ("县环保局", "HB"),
        ("国土局", "ZR"),
        ("工商局", "SJ"),
        ("质监局", "SJ"),
        ("食药监局", "SJ"),
        ("安监局", "YJ"),
    ],
)
def test_a_former_name_finds_the_department_that_took_its_work(word: str, code: str) -> None:
    """Officers still say 环保局, 工商局, 安监局 for the bodies the 2018 reform merged."""
    assert [d.code for d in named(_county(), word)] == [code]


def test_a_former_name_gives_way_to_a_department_that_still_bears_it() -> None:
    """城管 is 县综合行政执法局 where the county merged it so, but 县城市管理局 where that
    exists; another level's former body (市环保局) is not the county's."""
    enforcement = Department(id=1, code="ZF", name="县综合行政执法局", short_name="")
    urban = Department(id=2, code="CG", name="县城市管理局", short_name="")
    assert named([enforcement], "城管局") == [enforcement]
    assert named([enforcement, urban], "城管") == [urban]
    assert named(_county(), "市环保局") == []


@pytest.mark.parametrize(
    ("word", "meant"),
    [
        ("卫建委", "WJ"),  # a homophone from the input method
        ("县卫建委", "WJ"),
        ("卫健健委", "WJ"),  # a character typed twice
        ("住建建局", "ZJ"),
        ("卫生", None),  # two characters: 卫健 is one off, but so is many a reason's first word
    ],
)
def test_a_name_one_character_off_is_suggested(word: str, meant: str | None) -> None:
    """卫建委 names no department; one character changed it names 县卫生健康局 — the refusal asks
    whether that was meant instead of reading the word as something else."""
    assert [d.code for d in one_off(_county(), word)] == ([meant] if meant else [])
    if meant == "WJ":
        assert "，是不是县卫生健康局（卫健）？请写" in unknown(_county(), word)


@pytest.mark.parametrize(
    ("word", "looks"),
    [
        ("卫建委", True),
        ("市监所", True),  # a unit's ending
        ("消防大队", True),
        ("县教体局", True),
        ("市场建管", True),  # one character from 市场监管
        ("公共场所", False),  # a place, the first word of a reason
        ("经营场所", False),
        ("缺少检测记录", False),
        ("卫生", False),
        ("公安", False),
        ("不完整", False),
    ],
)
def test_what_looks_like_a_department_name(word: str, looks: bool) -> None:
    """A word ending as organs' names end (委, 局, 厅, 办, 队, 所), or one character from a
    department's name, is a department's name misspelt, not the first word of a reason."""
    assert looks_like_a_name(_county(), word) is looks

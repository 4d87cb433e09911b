import datetime as dt

import pytest

from core import results
from core.errors import ValidationFailed
from core.results import (
    CATEGORIES,
    QUICK_CODES,
    choices,
    department_base_code,
    department_category,
    export_code,
    parse_quick_result,
    parse_result,
    raise_first,
    result_problems,
    unoffered_problem,
)

TODAY = dt.date(2026, 3, 20)
DAY = dt.date(2026, 3, 10)
WJ = department_category("WJ", "县卫生健康委员会")
VISIT = ["实地检查"]


def test_table_has_exactly_the_domain_codes_and_labels():
    assert list(CATEGORIES) == [
        "1",
        "A",
        "2",
        "B",
        "C",
        "6",
        "D",
        "3",
        "4",
        "G",
        "5",
        "E",
        "F",
        "7",
        "8",
        "9",
        "10",
        "11",
        "12",
    ]
    assert CATEGORIES["1"].label == "未发现问题"
    assert CATEGORIES["2"].label == "违反工商（市场监管）行政管理相关规定"
    assert CATEGORIES["6"].label == "通过登记的住所（经营场所）无法联系"
    assert CATEGORIES["F"].label == "未发现开展本次抽查涉及的经营活动"


def test_department_children_keep_their_national_base_code():
    assert department_base_code("县食品药品监督管理局") == "3"
    assert department_base_code("县质量技术监督局") == "4"
    assert department_base_code("县公安局") == "G"
    assert (WJ.code, WJ.label, WJ.parent) == ("5:WJ", "违反县卫生健康委员会相关规定", "A")
    assert export_code(WJ.code) == "5"


def test_the_form_offers_each_choice_once() -> None:
    """3, 4, G, 5 generalise to one child of A per participating department (docs/domain.md):
    a department's own child stands in for the national code of its kind, and with
    departments of its own the task offers no generic 5 (其他部门): each choice is named
    once, by an unambiguous tag (5-卫健); a ticked national code stays offered, and the
    child with its words gives way."""
    police, named = department_category("GA", "公安"), department_category("GA", "县公安局")
    health, roads = department_category("WJ", "卫健"), department_category("JT", "交通")
    offered = choices([police, health, roads])
    codes = [c.code for c in offered]
    assert "G" not in codes and "5" not in codes and {"3", "4", "G:GA", "5:WJ"} <= set(codes)
    assert codes.index("4") < codes.index("G:GA") < codes.index("5:WJ") < codes.index("E")
    tags = [c.tag for c in offered]
    assert len(tags) == len(set(tags)) and {"G-公安", "5-卫健", "5-交通"} <= set(tags)
    assert "G" not in [c.code for c in choices([named])]  # other words, still 公安's
    ticked = [c.code for c in choices([police, WJ], ticked={"G", "5"})]
    assert {"G", "5", "5:WJ"} <= set(ticked) and "G:GA" not in ticked
    assert {"G", "G:GA"} <= {c.code for c in choices([police], ticked={"G", "G:GA"})}
    assert [c.code for c in choices([])] == list(CATEGORIES)  # no department: 5 as ever


def test_the_generic_parent_is_refused_where_departments_have_their_own_children() -> None:
    """docs/domain.md, result categories (3, 4, G, 5: one child per participating
    department): an item's 5, or G beside 公安's own child, names no department and is
    refused, naming the departments' choices; stored as such (chat, older entries), it stays."""
    police, health = department_category("GA", "公安"), department_category("WJ", "卫健")
    err = unoffered_problem(["A", "5"], [police, health])
    assert err is not None and err.field == "codes"
    assert "“违反其他部门相关规定”（5）" in err.message
    assert "“违反公安相关规定”（G-公安）" in err.message and "（5-卫健）" in err.message
    assert unoffered_problem(["A", "G"], [police, health]) is not None
    assert unoffered_problem(["A", "5"], [police, health], stored=["A", "5"]) is None
    assert unoffered_problem(["A", "5:WJ", "3"], [police, health]) is None
    assert unoffered_problem(["A", "5"], []) is None  # no department of its own: 5 as ever


@pytest.mark.parametrize("typed", ["5-卫健", "违反卫健相关规定", "g-公安"])
def test_chat_names_a_departments_child_as_the_form_does_and_points_at_the_form(
    typed: str,
) -> None:
    """The chat's parsing agrees with the form: a department's own child, typed by its tag
    or its words, is a problem found, which the form takes (not an unknown result)."""
    with pytest.raises(ValidationFailed) as err:
        parse_quick_result(typed)
    assert "无法识别" not in err.value.message and "结果填报表单" in err.value.message


@pytest.mark.parametrize(
    ("codes", "methods", "followups", "day"),
    [
        (["1"], VISIT, ["无需后续处置"], DAY),
        (["1"], ["网络监测"], ["无需后续处置"], DAY),
        (["A", "2", "B"], VISIT, ["责令改正并跟踪"], DAY),
        (["A", "2", "B", "C", "D"], VISIT, ["责令改正并跟踪", "抄告相关部门"], DAY),
        (["A", "5:WJ"], ["书面检查"], ["移送办案机构"], DAY),
        (["A", "2", "D", "3"], VISIT, ["其他"], DAY),
        (["A", "2", "6"], [], ["其他"], None),  # 无法联系: no visit, no date (004 第十八条)
        (["E"], VISIT, ["责令改正并跟踪"], DAY),
        (["E", "A", "2", "B"], VISIT, ["责令改正并跟踪"], DAY),
        (["F"], VISIT, ["无需后续处置"], DAY),
        (["7"], [], ["无需后续处置"], None),
        (["8"], [], ["其他"], None),
        (["9"], [], ["无需后续处置"], None),
        (["12"], [], ["无需后续处置"], None),
    ],
)
def test_good_combinations(codes, methods, followups, day):
    raise_first(result_problems(codes, methods, followups, day, today=TODAY, extra=[WJ]))


@pytest.mark.parametrize(
    ("codes", "methods", "followups", "day", "message"),
    [
        ([], VISIT, ["无需后续处置"], DAY, "请至少选择一项检查结果"),
        (["Z"], VISIT, ["无需后续处置"], DAY, "未知的检查结果代码“Z”"),
        (["5:WJ", "A"], VISIT, ["其他"], DAY, "未知的检查结果代码“5:WJ”"),  # not a participant
        (["1", "E"], VISIT, ["责令改正并跟踪"], DAY, "“未发现问题”（1）不能与其他检查结果同时选择"),
        (["1", "1"], VISIT, ["无需后续处置"], DAY, "重复"),
        (["A"], VISIT, ["其他"], DAY, "还须至少选择其下一项具体问题"),
        (
            ["A", "2"],
            VISIT,
            ["其他"],
            DAY,
            "“违反工商（市场监管）行政管理相关规定”（2），还须至少选择其下一项具体问题："
            "“未按规定公示应当公示的信息”、“公示信息隐瞒真实情况、弄虚作假”、"
            "“通过登记的住所（经营场所）无法联系”、“违反其他工商（市场监管）行政管理规定行为”",
        ),
        (
            ["B"],
            VISIT,
            ["其他"],
            DAY,
            "还须选择上级类别“违反工商（市场监管）行政管理相关规定”（2）",
        ),
        (["2", "B"], VISIT, ["其他"], DAY, "还须选择上级类别“发现问题待后续处理”（A）"),
        (["A", "2", "B"], VISIT, ["无需后续处置"], DAY, "须有后续处置，不能选择“无需后续处置”"),
        (["E"], VISIT, ["无需后续处置"], DAY, "“发现问题已责令改正”（E）须有后续处置"),
        (["8"], [], ["无需后续处置"], None, "“不配合检查情节严重”（8）须有后续处置"),
        (
            ["A", "2", "B"],
            VISIT,
            ["责令改正并跟踪"],
            None,
            "“未按规定公示应当公示的信息”（B）须经检查作出，请填写检查日期",
        ),
        (["1"], VISIT, ["无需后续处置"], None, "请填写检查日期"),
        (["1"], [], ["无需后续处置"], DAY, "请至少选择一种检查方式"),
        (["1"], ["上门看看"], ["无需后续处置"], DAY, "未知的检查方式“上门看看”"),
        (["1"], VISIT, [], DAY, "请选择后续处置"),
        (["1"], VISIT, ["罚款"], DAY, "未知的后续处置“罚款”"),
        (["E"], VISIT, ["无需后续处置", "其他"], DAY, "“无需后续处置”不能与其他后续处置同时选择"),
        (["9", "10"], [], ["无需后续处置"], None, "注销、被吊销、被撤销、迁出只能选择其中一项"),
        (["1"], VISIT, ["无需后续处置"], dt.date(2026, 3, 21), "检查日期不能晚于今天"),
    ],
)
def test_bad_combinations_name_the_rule(codes, methods, followups, day, message):
    extra = [WJ] if codes != ["5:WJ", "A"] else []
    with pytest.raises(ValidationFailed) as err:
        raise_first(result_problems(codes, methods, followups, day, today=TODAY, extra=extra))
    assert message in str(err.value)


def test_a_without_a_child_names_each_choice_once_in_the_forms_words() -> None:
    """The refusal lists what the form offers under A (core.results.choices): each category
    once, by its label, not the export codes the departments' children share (5, 5, G…)."""
    police, roads = department_category("GA", "县公安局"), department_category("JT", "县交通运输局")
    with pytest.raises(ValidationFailed) as err:
        raise_first(
            result_problems(["A"], VISIT, ["其他"], DAY, today=TODAY, extra=[police, WJ, roads])
        )
    listed = str(err.value).split("：", 1)[1]
    assert listed == "、".join(
        f"“{label}”"
        for label in (
            "违反工商（市场监管）行政管理相关规定",
            "违反食品药品相关规定",
            "违反质量技术监督相关规定",
            "违反县公安局相关规定",
            "违反县卫生健康委员会相关规定",
            "违反县交通运输局相关规定",
        )
    )


@pytest.mark.parametrize(
    ("done", "done_on", "message"),
    [
        (True, None, "请填写完成日期"),
        (False, DAY, "不应填写完成日期"),
        (True, dt.date(2026, 3, 9), "应在检查日期之后"),
        (True, dt.date(2026, 3, 21), "今天之前"),
    ],
)
def test_followup_done_needs_a_sensible_date(done, done_on, message):
    with pytest.raises(ValidationFailed) as err:
        raise_first(
            result_problems(
                ["E"],
                VISIT,
                ["责令改正并跟踪"],
                DAY,
                today=TODAY,
                followup_done=done,
                followup_done_on=done_on,
            )
        )
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("未发现问题", ["1"]),
        ("1", ["1"]),
        (" 1 ", ["1"]),
        ("注销", ["9"]),
        ("已注销", ["9"]),
        ("被吊销", ["10"]),
        ("吊销", ["10"]),
        ("迁出", ["12"]),
        ("F", ["F"]),
        ("7 已关闭停业或正在组织清算", ["7"]),
    ],
)
def test_quick_results(text, codes):
    assert parse_quick_result(text).codes == codes


@pytest.mark.parametrize(
    ("text", "followups"),
    [
        ("不配合检查情节严重 抄告相关部门", ["抄告相关部门"]),
        ("8 移送办案机构、其他", ["移送办案机构", "其他"]),
        ("未发现问题", ["无需后续处置"]),
    ],
)
def test_a_quick_result_takes_the_follow_ups_typed_after_it_004_art21(text, followups):
    """004 第二十一条: 8 needs a follow-up; chat takes it typed, as the form takes it ticked."""
    assert parse_quick_result(text).followups == followups


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "请写明检查结果"),
        ("A", "请在结果填报表单中填写"),
        ("发现问题待后续处理", "请在结果填报表单中填写"),
        (
            "公示信息隐瞒真实情况、弄虚作假",
            "“公示信息隐瞒真实情况、弄虚作假”（C）需要填写问题和后续处置",
        ),
        # E needs a description of the problem and a follow-up: never a quick result
        ("E", "“发现问题已责令改正”（E）需要填写问题和后续处置"),
        ("E 已责令改正", "“发现问题已责令改正”（E）需要填写问题和后续处置"),
        ("发现问题已责令改正", "“发现问题已责令改正”（E）需要填写问题和后续处置"),
        # 8 is a situation, not a problem (004 第十八条), but needs a follow-up (第二十一条)
        ("8", "“不配合检查情节严重”（8）须有后续处置（004 第二十一条），请写在结果之后"),
        ("还行吧", "无法识别的检查结果“还行吧”"),
        ("1 9", "不能与其他检查结果同时选择"),
    ],
)
def test_quick_results_refused(text, message):
    with pytest.raises(ValidationFailed) as err:
        parse_quick_result(text)
    assert message in str(err.value)


def test_quick_results_pass_validation():
    for text in ("1", "F", "7", "9", "12", "8 抄告相关部门"):
        quick = parse_quick_result(text)
        raise_first(result_problems(quick.codes, quick.methods, quick.followups, DAY, today=TODAY))


def test_quick_codes_are_those_the_form_asks_no_problem_description_for_004_art18():
    assert QUICK_CODES == ("1", "F", "7", "8", "9", "10", "11", "12")
    for code in QUICK_CODES:
        assert CATEGORIES[code].kind != "problem", code


@pytest.mark.parametrize(("name", "code"), [("无法联系", "6"), ("已关闭停业", "7")])
def test_a_situations_short_name_is_read_as_its_code_004_art18(name, code):
    """004 第十八条 names the situations in short (无法联系, 已关闭停业 …): typed so, they are
    read as their code, with the code's own answer — 6 needs the form — rather than called an
    unknown result."""
    assert parse_result(name) == parse_result(code)
    if CATEGORIES[code].describes_problem:
        with pytest.raises(ValidationFailed) as by_name:
            parse_quick_result(name)
        with pytest.raises(ValidationFailed) as by_code:
            parse_quick_result(code)
        assert by_name.value.message == by_code.value.message


@pytest.mark.parametrize("said", ["无需处理", "不需处理", "无需处置", "无", "未发现问题。"])
def test_a_no_problem_item_may_say_nothing_needed_in_its_own_words(said: str) -> None:
    """未发现问题 with "no action needed" under 处理情况 says the same thing; 无需处理 and
    不需处理, the usual words, were refused as contradicting it."""
    assert results.no_problem_text(["1"], said, said) == []
    assert [e.field for e in results.no_problem_text(["1"], "年报未公示", "责令补报")] == [
        "problems",
        "handling",
    ]

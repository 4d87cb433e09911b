"""Result categories (docs/domain.md table) and the rules for combining them.

Codes are the provincial platforms' export keys. Departments other than market regulation get
their own child of A: "<base>:<department code>", where the base is the national code 3
(食品药品), 4 (质量技术监督), G (公安) or 5 (其他部门) that an export falls back to.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from core.errors import ValidationFailed
from core.workdays import cn_date


@dataclass(frozen=True)
class Category:
    code: str
    label: str
    kind: str  # conclusion | problem | status
    parent: str | None = None
    without_visit: bool = False  # may be entered without a visit (004 第十八条)
    needs_followup: bool = False  # "无需后续处置" contradicts it
    # the form asks what was found: a problem (A and its children) or E, not a status such as 8
    # (004 第十八条: the result is formed directly from the situation)
    describes_problem: bool = False
    department: str = ""  # a participating department's own child of A: its short name

    @property
    def tag(self) -> str:
        """How the form and the documents name the choice beside its label: the national code,
        or for a department's own child its export code and the department (5-卫健), so
        several departments' children exporting as 5 never read alike."""
        return f"{export_code(self.code)}-{self.department}" if self.department else self.code


def _problem(
    code: str, label: str, parent: str | None, without_visit: bool = False, department: str = ""
) -> Category:
    return Category(
        code,
        label,
        "problem",
        parent,
        without_visit,
        needs_followup=True,
        describes_problem=True,
        department=department,
    )


CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in (
        Category("1", "未发现问题", "conclusion"),
        _problem("A", "发现问题待后续处理", None),
        _problem("2", "违反工商（市场监管）行政管理相关规定", "A"),
        _problem("B", "未按规定公示应当公示的信息", "2"),
        _problem("C", "公示信息隐瞒真实情况、弄虚作假", "2"),
        _problem("6", "通过登记的住所（经营场所）无法联系", "2", without_visit=True),
        _problem("D", "违反其他工商（市场监管）行政管理规定行为", "2"),
        _problem("3", "违反食品药品相关规定", "A"),
        _problem("4", "违反质量技术监督相关规定", "A"),
        _problem("G", "违反公安相关规定", "A"),
        _problem("5", "违反其他部门相关规定", "A"),
        Category(
            "E", "发现问题已责令改正", "conclusion", needs_followup=True, describes_problem=True
        ),
        Category("F", "未发现开展本次抽查涉及的经营活动", "conclusion"),
        Category("7", "已关闭停业或正在组织清算", "status", without_visit=True),
        # 004 第二十一条: serious non-cooperation must be followed by penalties or sanctions
        Category("8", "不配合检查情节严重", "status", without_visit=True, needs_followup=True),
        Category("9", "注销", "status", without_visit=True),
        Category("10", "被吊销", "status", without_visit=True),
        Category("11", "被撤销", "status", without_visit=True),
        Category("12", "迁出", "status", without_visit=True),
    )
}

HEADERS = ("A", "2")  # parents whose own visit requirement comes from their children
REGISTRATION_STATUSES = ("9", "10", "11", "12")  # one registration status at a time
METHODS = (
    "实地检查",
    "书面检查",
    "网络监测",
    "检验检测",
    "委托专业机构",
    "采用其他部门检查结果或专业意见",
)
NO_FOLLOWUP = "无需后续处置"
CORRECTIVE_FOLLOWUP = "责令改正并跟踪"  # of a problem the check found: never with 未发现问题
FOLLOWUPS = (
    NO_FOLLOWUP,
    CORRECTIVE_FOLLOWUP,
    "移送办案机构",
    "抄告相关部门",
    "移送司法机关",
    "其他",
)
REFERRAL_FOLLOWUPS = ("移送办案机构", "移送司法机关")  # need a Referral row (移送)
# Results chat can take: the form asks no problem description for them (8 needs a follow-up,
# typed after it); the rest need the form (problems, handling, photos): say how to open it.
QUICK_CODES = tuple(code for code, c in CATEGORIES.items() if not c.describes_problem)
DETAIL_HINT = "请在结果填报表单中填写：发送“我的检查”，点开该案件的“填报结果”链接"
# short names people type for a category, 004 第十八条's words for the situations among them
_ALIASES = {
    "无问题": "1",
    "无法联系": "6",
    "已关闭停业": "7",
    "正在组织清算": "7",
    "已注销": "9",
    "吊销": "10",
    "撤销": "11",
    "已迁出": "12",
}
_DEPT_BASES = (("3", ("食品", "药品")), ("4", ("质量", "质监", "技术监督")), ("G", ("公安",)))


def department_base_code(department_name: str) -> str:
    """The national child code (3 / 4 / G / 5) a department's own category exports as."""
    for code, words in _DEPT_BASES:
        if any(w in department_name for w in words):
            return code
    return "5"


def department_category(department_code: str, department_name: str) -> Category:
    """The child of A for one participating department: "违反〈部门〉相关规定"."""
    base = department_base_code(department_name)
    code, words = f"{base}:{department_code}", f"违反{department_name}相关规定"
    return _problem(code, words, "A", department=department_name)


def export_code(code: str) -> str:
    """The provincial export key of a code (department children export as their base)."""
    return code.split(":", 1)[0]


def ordered_categories(extra: Sequence[Category]) -> list[Category]:
    """The catalogue in docs/domain.md's order, the departments' own children of A after 5."""
    return _in_tree_order(list(CATEGORIES.values()), extra)


def _in_tree_order(national: list[Category], extra: Sequence[Category]) -> list[Category]:
    # after 5 (其他部门), where 5 is offered: the last national child of A, before E
    at = next(i for i, c in enumerate(national) if c.code == "E")
    return [*national[:at], *extra, *national[at:]]


# The national children of A that each name one kind of department; 5 (其他部门) does not.
_KIND_CODES = frozenset(code for code, _ in _DEPT_BASES)
OTHER_DEPARTMENTS = "5"  # 违反其他部门相关规定: no department named


def _not_offered(extra: Sequence[Category], ticked: Collection[str]) -> set[str]:
    """The national children of A a form leaves out for the task's departments (`extra`)."""
    if not extra:
        return set()
    generic = {export_code(c.code) for c in extra} & _KIND_CODES | {OTHER_DEPARTMENTS}
    return generic - set(ticked)


def choices(extra: Sequence[Category], ticked: Collection[str] = ()) -> list[Category]:
    """What a result form offers, each choice once (docs/domain.md, "Result categories": 3, 4,
    G, 5 generalise to one child of A per participating department). A participating
    department's own child stands in for the national code it exports as when that code
    names one kind of department (3, 4, G), so 公安's "违反公安相关规定" is offered once, as
    G:GA; and once the task has departments of its own, 5 (其他部门) is not offered: a
    problem is entered under the department whose rules it breaks (5-卫健, 5-交通 …), never
    as some department unnamed. A national code already `ticked` (stored by chat or before,
    and re-opened) stays offered, so it shows and is submitted again as stored; a department
    child with its very label is then the one left out."""
    replaced = _not_offered(extra, ticked)
    national = [c for c in CATEGORIES.values() if c.code not in replaced]
    labels = {c.label for c in national}
    return _in_tree_order(national, [c for c in extra if c.code in ticked or c.label not in labels])


def unoffered_problem(
    codes: Sequence[str], extra: Sequence[Category], stored: Collection[str] = ()
) -> ValidationFailed | None:
    """A national code among an item's `codes` that the form does not offer (`choices`):
    the generic 5, or 3 / 4 / G where a participating department of that kind has its own
    child, names no department. `stored`: the item's codes as stored (chat, an older
    entry), which stay as they are."""
    left_out = _not_offered(extra, stored)
    chosen = [CATEGORIES[c] for c in codes if c in left_out]
    if not chosen:
        return None
    offered = [c for c in choices(extra, stored) if c.parent == "A" and c.code not in CATEGORIES]
    return ValidationFailed(
        f"{_named(chosen[0])}没有写明违反哪个部门的规定；本任务的参与部门各有其类别，请改选："
        + "、".join(_named(c) for c in offered),
        field="codes",
    )


def catalogue(extra: Iterable[Category] = ()) -> dict[str, Category]:
    return {**CATEGORIES, **{c.code: c for c in extra}}


def label(code: str, extra: Iterable[Category] = ()) -> str:
    cat = catalogue(extra).get(code)
    return cat.label if cat else code


def tag(code: str, extra: Iterable[Category] = ()) -> str:
    """The code as the form and the documents name it (`Category.tag`: 5-卫健)."""
    cat = catalogue(extra).get(code)
    return cat.tag if cat else export_code(code)


def _named(cat: Category) -> str:
    return f"“{cat.label}”（{cat.tag}）"


def check_codes(codes: Sequence[str], extra: Iterable[Category] = ()) -> None:
    """Structure rules shared by case and item results: known codes, exclusivity, parents."""
    extra = list(extra)
    known = catalogue(extra)
    if not codes:
        raise ValidationFailed("请至少选择一项检查结果")
    for code in codes:
        if code not in known:
            raise ValidationFailed(f"未知的检查结果代码“{code}”")
    if len(set(codes)) != len(codes):
        raise ValidationFailed("检查结果中有重复的选项")
    if "1" in codes and len(codes) > 1:
        raise ValidationFailed("“未发现问题”（1）不能与其他检查结果同时选择")
    if len([c for c in codes if c in REGISTRATION_STATUSES]) > 1:
        raise ValidationFailed("注销、被吊销、被撤销、迁出只能选择其中一项")
    for code in codes:
        parent = known[code].parent
        if parent is not None and parent not in codes:
            raise ValidationFailed(
                f"选择了{_named(known[code])}，还须选择上级类别{_named(known[parent])}"
            )
    for header in HEADERS:
        if header in codes and not any(known[c].parent == header for c in codes):
            raise ValidationFailed(
                f"选择了{_named(known[header])}，还须至少选择其下一项具体问题："
                + _children_in_words(header, extra, codes)
            )


def _children_in_words(header: str, extra: Iterable[Category], ticked: Sequence[str]) -> str:
    """The header's children as the form offers them (`choices`): each once, by its label;
    several departments' children share an export code (5), so codes would repeat."""
    offered = [c.label for c in choices(list(extra), ticked) if c.parent == header]
    return "、".join(f"“{label}”" for label in dict.fromkeys(offered))


def _visit_codes(codes: Sequence[str], known: dict[str, Category]) -> list[str]:
    """The codes that need a visit. A header's need comes from its children; one with no
    child chosen yet needs a visit, as all its children but 6 do."""
    return [
        c
        for c in codes
        if not known[c].without_visit
        and (c not in HEADERS or not any(known[x].parent == c for x in codes))
    ]


def needs_visit(codes: Iterable[str], extra: Iterable[Category] = ()) -> bool:
    return bool(_visit_codes(list(codes), catalogue(extra)))


def _list_problem(
    values: Sequence[str], allowed: Sequence[str], what: str, field: str
) -> ValidationFailed | None:
    for v in values:
        if v not in allowed:
            return ValidationFailed(f"未知的{what}“{v}”，可选：{'、'.join(allowed)}", field=field)
    if len(set(values)) != len(values):
        return ValidationFailed(f"{what}中有重复的选项", field=field)
    return None


def raise_first(problems: Sequence[ValidationFailed]) -> None:
    """Refuse with the first of `problems` (result_problems' list): chat answers one at a time."""
    if problems:
        raise problems[0]


def result_problems(
    codes: Sequence[str],
    methods: Sequence[str],
    followups: Sequence[str],
    inspected_on: dt.date | None,
    *,
    today: dt.date,
    extra: Iterable[Category] = (),
    followup_done: bool = False,
    followup_done_on: dt.date | None = None,
) -> list[ValidationFailed]:
    """Every rule the result breaks, the first of each field's, so a form shows them all at
    once: the codes' own (field ""), methods, follow-ups, inspection date, follow-up done."""
    extra = list(extra)
    known = catalogue(extra)
    try:
        check_codes(codes, extra)
        codes_problem = None
    except ValidationFailed as err:
        codes_problem = err
    codes = [c for c in codes if c in known]  # the rest is checked on what is known
    visit = _visit_codes(codes, known)
    checks = (
        codes_problem,
        _methods_problem(methods, bool(visit)),
        _followups_problem(followups, codes, known),
        _date_problem(inspected_on, [known[c] for c in visit], today),
        _followup_done_problem(followup_done, followup_done_on, inspected_on, today),
    )
    return [p for p in checks if p is not None]


def _methods_problem(methods: Sequence[str], visit: bool) -> ValidationFailed | None:
    listed = _list_problem(methods, METHODS, "检查方式", "methods")
    if listed is None and visit and not methods:
        return ValidationFailed("请至少选择一种检查方式", field="methods")
    return listed


def _followups_problem(
    followups: Sequence[str], codes: Sequence[str], known: dict[str, Category]
) -> ValidationFailed | None:
    listed = _list_problem(followups, FOLLOWUPS, "后续处置", "followups")
    if listed is not None:
        return listed
    if not followups:
        return ValidationFailed(
            "请选择后续处置（没有后续处置时选择“无需后续处置”）", field="followups"
        )
    if NO_FOLLOWUP in followups and len(followups) > 1:
        return ValidationFailed("“无需后续处置”不能与其他后续处置同时选择", field="followups")
    needing = [known[c] for c in codes if known[c].needs_followup]
    if NO_FOLLOWUP in followups and needing:
        return ValidationFailed(
            f"结果{_named(needing[0])}须有后续处置，不能选择“无需后续处置”", field="followups"
        )
    if list(codes) == [NO_PROBLEM] and CORRECTIVE_FOLLOWUP in followups:
        # a 移送 / 抄告 may stand: a registered clue outside the checked items (001 第十七条)
        return ValidationFailed(
            f"检查结果为“未发现问题”，没有需要责令改正的问题，后续处置不能选择"
            f"“{CORRECTIVE_FOLLOWUP}”；请改选“{NO_FOLLOWUP}”（聊天录入或更正时写在结果之后，"
            f"如：未发现问题 {NO_FOLLOWUP}），或改选发现问题的检查结果",
            field="followups",
        )
    return None


def _date_problem(
    inspected_on: dt.date | None, visited: Sequence[Category], today: dt.date
) -> ValidationFailed | None:
    """`visited`: the result's categories that need a visit."""
    if visited and inspected_on is None:
        return ValidationFailed(
            f"结果{_named(visited[0])}须经检查作出，请填写检查日期", field="inspected_on"
        )
    if inspected_on is not None and inspected_on > today:
        return ValidationFailed("检查日期不能晚于今天", field="inspected_on")
    return None


def _followup_done_problem(
    done: bool, done_on: dt.date | None, inspected_on: dt.date | None, today: dt.date
) -> ValidationFailed | None:
    if done and done_on is None:
        return ValidationFailed("后续处置已完成的，请填写完成日期", field="followup_done_on")
    if not done and done_on is not None:
        return ValidationFailed("后续处置未完成，不应填写完成日期", field="followup_done_on")
    if done_on is not None and (done_on > today or (inspected_on and done_on < inspected_on)):
        return ValidationFailed(
            "后续处置完成日期应在检查日期之后、今天之前", field="followup_done_on"
        )
    return None


def item_problems(
    codes: Sequence[str], problems: str, handling: str, extra: Iterable[Category] = ()
) -> list[ValidationFailed]:
    """What an item's result breaks: its codes' rules (field "codes"), a problem found left
    undescribed, and problems or handling under 未发现问题 (`no_problem_text`)."""
    extra = list(extra)
    found: list[ValidationFailed] = []
    try:
        if codes:  # an item left blank is not entered
            check_codes(codes, extra)
    except ValidationFailed as err:
        found.append(ValidationFailed(err.message, field="codes"))
    known = catalogue(extra)
    if any(known[c].describes_problem for c in codes if c in known) and not problems.strip():
        found.append(ValidationFailed("发现问题的，请写明发现的问题", field="problems"))
    return found + no_problem_text(codes, problems, handling)


def no_problem_text(codes: Sequence[str], problems: str, handling: str) -> list[ValidationFailed]:
    """An item whose result is 未发现问题 found nothing, so it has nothing under 发现的问题 or
    处理情况 (fields "problems", "handling"): text there contradicts it — refused, never
    cleared, since only the officer knows which is wrong (a correction's form keeps the
    published text)."""
    if list(codes) != [NO_PROBLEM]:
        return []
    # "无" under 发现的问题, or "无需处理" under 处理情况, says the same as 未发现问题
    nothing = (
        *("无", "没有", "暂无", "未发现", "未发现问题", "无问题", "/", "／", "-", "—"),
        *("无需处理", "不需处理", "无需处置", "不需处置", "无需整改", "不需整改"),
    )
    said = {"problems": ("发现的问题", problems), "handling": ("处理情况", handling)}
    return [
        ValidationFailed(
            f"检查结果为“未发现问题”，不应填写{what}；请删去{what}，或改选发现问题的检查结果",
            field=field,
        )
        for field, (what, text) in said.items()
        if text.strip(" 。.") and text.strip(" 。.") not in nothing
    ]


def missing_referral(followups: Sequence[str], kinds: Collection[str]) -> ValidationFailed | None:
    """A follow-up that is a 移送 (REFERRAL_FOLLOWUPS) without a referral of its kind (`kinds`:
    the case's, and one being entered with the result)."""
    missing = [k for k in followups if k in REFERRAL_FOLLOWUPS and k not in kinds]
    if not missing:
        return None
    return ValidationFailed(
        f"后续处置选择了“{missing[0]}”，请先登记移送记录（接收单位和移送内容）", field="referral"
    )


def problem_disproved(published: Sequence[str], corrected: Sequence[str]) -> bool:
    """A correction whose re-check found the problem did not exist (004 第二十条): the part
    published a problem found (A and its children, E) and is corrected to 未发现问题. A
    referral resting on that problem then leaves the corrected part no follow-up, so it may
    say 无需后续处置; the referral stays in the case's record (001 第十七条). A part that
    published 未发现问题 beside its referral referred a clue outside the checked items
    (rule 11), which a correction does not undo."""
    found = any(c in CATEGORIES and CATEGORIES[c].describes_problem for c in published)
    return found and list(corrected) == [NO_PROBLEM]


def unrecorded_referral(
    followups: Sequence[str], referrals: Sequence[tuple[str, str]]
) -> ValidationFailed | None:
    """无需后续处置 in the part of a department that referred a clue of the case (`referrals`:
    its own, (kind, receiver)): a referral is a follow-up (001 第十七条, 004 第二十一条); say
    which to choose."""
    if NO_FOLLOWUP not in followups or not referrals:
        return None
    kind, to = referrals[0]
    kinds = "”或“".join(dict.fromkeys(k for k, _ in referrals))
    return ValidationFailed(
        f"本部门已就本案登记移送（{kind}：{to}），"
        f"后续处置不能选择“{NO_FOLLOWUP}”，"
        f"请选择“{kinds}”（聊天录入时写在检查结果之后）",
        field="followups",
    )


NO_PROBLEM = "1"


def case_codes(item_codes: Iterable[Sequence[str]]) -> list[str]:
    """The case conclusion from the item results: "未发现问题" only when every checked item
    found none; otherwise every other category any item found, in first-seen order."""
    seen: list[str] = []
    for codes in item_codes:
        seen += [c for c in codes if c not in seen]
    found = [c for c in seen if c != NO_PROBLEM]
    return found or ([NO_PROBLEM] if seen else [])


def situations(codes: Iterable[str]) -> frozenset[str]:
    """The target's own situation among `codes`, which the result is formed from directly,
    without a visit (004 第十八条: 无法联系, 不配合检查情节严重, 注销 …; and 7)."""
    return frozenset(c for c in codes if c in CATEGORIES and CATEGORIES[c].without_visit)


def situation_named(codes: Sequence[str]) -> str:
    """The target's situation among `codes` in words, as refusals name codes: “注销”（9）."""
    return _listed([c for c in codes if c in situations(codes)], CATEGORIES)


def with_parents(codes: Iterable[str]) -> list[str]:
    """`codes` and the parents each needs (6: A and 2), in the catalogue's order."""
    found: set[str] = set()
    for code in codes:
        parent: str | None = code
        while parent is not None:
            found.add(parent)
            parent = CATEGORIES[parent].parent
    return [c for c in CATEGORIES if c in found]


def contradiction(
    mine: Sequence[str],
    theirs: Sequence[str],
    department: str,
    entered_on: dt.date,
    extra: Iterable[Category] = (),
) -> ValidationFailed | None:
    """`mine` against another department's part of the same case (`theirs`, entered by
    `department` on `entered_on`): one joint visit checks every department's items
    (004 第十四条), so the parts must say the same situation, or all none (docs/domain.md,
    "Parts that contradict"). A conclusion of the department's own items stands beside
    another's (未发现问题 beside a problem found)."""
    if situations(mine) == situations(theirs):
        return None
    known = catalogue(extra)
    return ValidationFailed(
        f"{department}{cn_date(entered_on)}录入的结果为{_listed(theirs, known)}，"
        f"与本次录入的{_listed(mine, known)}{_CONTRADICT}各部门须一致。请与{department}核实："
        f"认同的，录入相同的结果；有误的，请{department}重新录入本部门结果后再提交",
        field="items",
    )


def mixed_items(
    items: Sequence[tuple[str, Sequence[str]]], extra: Iterable[Category] = ()
) -> ValidationFailed | None:
    """One department's items (name, codes) that say different situations: the target's
    situation is one for all its items (docs/domain.md, "Parts that contradict")."""
    known = catalogue(extra)
    for (name, codes), (other, said) in itertools.pairwise(items):
        if situations(codes) != situations(said):
            return ValidationFailed(
                f"事项“{name}”的结果为{_listed(codes, known)}，与事项“{other}”的结果"
                f"{_listed(said, known)}{_CONTRADICT}各事项须一致，请改正后再提交",
                field="items",
            )
    return None


_CONTRADICT = (
    "相互矛盾：无法联系、不配合检查情节严重、注销等是检查对象本身的情况，据此直接形成检查结果"
    "而未能检查（004 第十八条），联合检查一次完成各部门事项（004 第十四条），"
)


def _listed(codes: Sequence[str], known: dict[str, Category]) -> str:
    return "、".join(_named(known[c]) for c in codes if c not in HEADERS)


def _lookup(token: str) -> str | None:
    upper = token.upper()
    return upper if upper in CATEGORIES else None


@dataclass(frozen=True)
class QuickResult:
    """A result typed in chat: its codes, and the methods and follow-ups they take."""

    codes: list[str]
    methods: list[str]  # 实地检查 when the codes need a visit
    followups: list[str]  # as typed after the result, or 无需后续处置


def parse_quick_result(text: str, *, followup_typed: bool = True) -> QuickResult:
    """A chat reply like "未发现问题", "1", "7 已关闭停业或正在组织清算", "注销" or
    "不配合检查情节严重 抄告相关部门" (a follow-up named after the result). The form's rules
    decide what chat may take: a code whose problem must be described needs the form, and one
    that needs a follow-up (8, 004 第二十一条) takes it typed; core checks the rest on entry.
    `followup_typed` False (the chat's 更正): none typed is no follow-up yet (`followups` []),
    core keeps the published part's (`core.publication.correct_result`)."""
    codes, followups = parse_result(text)
    for code in codes:
        if CATEGORIES[code].describes_problem:
            raise ValidationFailed(
                f"结果{_named(CATEGORIES[code])}需要填写问题和后续处置，{DETAIL_HINT}"
            )
    check_codes(codes)
    if not followup_typed:
        return QuickResult(codes, quick_methods(codes), followups)
    return QuickResult(codes, quick_methods(codes), followups or untyped_followups(codes))


def quick_methods(codes: Sequence[str]) -> list[str]:
    """The methods a result typed in chat takes: 实地检查 when its codes need a visit; none for
    a situation formed without one (004 第十八条)."""
    return ["实地检查"] if needs_visit(codes) else []


def needs_form(codes: Sequence[str]) -> bool:
    """Whether a result can only be given on the form (its problems described)."""
    return any(CATEGORIES[code].describes_problem for code in codes)


def parse_result(text: str, hint: str = DETAIL_HINT) -> tuple[list[str], list[str]]:
    """The codes and the follow-ups named in a chat reply, by code or label, whether chat may
    take them or not (unchecked); `hint`: where a result with problems is given, said when
    the reply names something we do not know."""
    rest = text.strip()
    if not rest:
        raise ValidationFailed("请写明检查结果，例如：未发现问题、1 或 注销")
    # Whole labels first (longest first): some contain separators, e.g. C's "、".
    names = [(c.label, c.code) for c in CATEGORIES.values()] + list(_ALIASES.items())
    for name, replacement in sorted(names, key=lambda pair: -len(pair[0])):
        rest = rest.replace(name, f" {replacement} ")
    codes: list[str] = []
    followups: list[str] = []
    for token in filter(None, re.split(r"[\s,，、;；/]+", rest)):
        found = _lookup(token)
        if found is None and token in FOLLOWUPS:
            followups.append(token)
            continue
        if found is None and codes and token in CATEGORIES[codes[-1]].label:
            continue  # words repeating the code's label: "7 已关闭停业"
        if found is None and _DEPARTMENT_CHILD.fullmatch(token):
            # a department's own child, as the form names it (5-卫健, 违反卫健相关规定)
            raise ValidationFailed(f"结果“{token}”需要填写问题和后续处置，{hint}")
        if found is None:
            raise ValidationFailed(
                f"无法识别的检查结果“{token}”。可直接填写：{_quick_choices()}；发现问题的结果{hint}"
            )
        if found not in codes:
            codes.append(found)
    return codes, followups


# how the form names a department's own child of A: its tag (5-卫健) or its label
_DEPARTMENT_CHILD = re.compile(r"(?:[345Gg]-\S+|违反\S+相关规定)")


def untyped_followups(codes: Sequence[str]) -> list[str]:
    """The follow-ups of a chat result typing none: 无需后续处置, when none of the codes needs
    a follow-up; else a refusal saying how to type one."""
    needing = [CATEGORIES[c] for c in codes if CATEGORIES[c].needs_followup]
    if needing:
        raise ValidationFailed(
            f"结果{_named(needing[0])}须有后续处置（004 第二十一条），请写在结果之后，例如："
            f"{needing[0].label} 抄告相关部门；可选：{'、'.join(FOLLOWUPS[1:])}"
        )
    return [NO_FOLLOWUP]


def _quick_choices() -> str:
    return "、".join(f"{c} {CATEGORIES[c].label}" for c in QUICK_CODES)

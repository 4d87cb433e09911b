"""Who may do what: every chat command, card action and page × every role × the subject's
department. The table below is the specification; tests/test_access_matrix.py runs every cell
against the real dispatcher and page handlers, and checks that README's "Access" section is
this table rendered (`python -m tests.access_matrix` prints it).

Columns: the actor's role (执法检查人员, 联络员, 分管领导, 管理员, 专家, an unknown user). Each cell
gives three outcomes, for a subject of the actor's own department, of another department, and
an unknown subject (a code that does not exist):

- ✓ allowed (the access check passes; the command may still say the state does not allow it)
- ✗ refused with a Chinese reason, and the refusal is in the audit log. That includes a subject
  that exists but holds nothing of the actor's to act on (no invitation to their department,
  not in the case's group, no referral to their department), in chat, on a card and on a page
  alike: the reason says only that, nothing about the subject beyond what the public side shows
- 公 allowed, but only what the public side (/public/) shows (002 二(六))
- ? "not found": no such subject (a code nobody has); nothing changes, nothing is revealed, and
  nothing is audited (a typo is not an attempt on anything)
- — not applicable (the command names no subject)

"Own" depends on the row: the lead department for a task's lead actions, the invited department
for an answer, the case's group (an inspector: a member of it) for case actions, the receiving
department for 签收, the replaced or recusing officer's department for 批准; an admin's "own" is
the same department. An unknown user (an account bound to no officer) is refused and audited
everywhere in chat; on a page it is a link naming no officer, refused before any page runs (with
no officer to name, that refusal is not audited). A result or review page's attachment
(`…/file`) follows its page; the picture page (`/h5/image`, the summary chart in DingTalk)
names a picture, not a department's subject: any officer the server signed the link for.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("执法检查人员", "联络员", "分管领导", "管理员", "专家", "未知用户")
ROLE_KEYS = ("inspector", "liaison", "leader", "admin", "expert", None)
RELATIONS = ("own", "other", "unknown")

OK, NO, PUBLIC, NOT_FOUND, NA = "✓", "✗", "公", "?", "—"


@dataclass(frozen=True)
class Row:
    action: str  # as the README shows it
    kind: str  # command | card | page
    own: str  # lead | partner | invited | receiving | none
    cells: tuple[str, ...]  # per role: three symbols (own, other, unknown)


def _row(action: str, kind: str, own: str, *cells: str) -> Row:
    assert len(cells) == len(ROLES), action
    assert all(len(c) == len(RELATIONS) for c in cells), action
    return Row(action, kind, own, cells)


# A subjectless command has "—" for other and unknown.
#                        执法检查人员  联络员  分管领导  管理员  专家  未知用户
MATRIX: list[Row] = [
    _row("帮助", "command", "none", "✓——", "✓——", "✓——", "✓——", "✓——", "✗——"),
    _row("任务", "command", "none", "✓——", "✓——", "✓——", "✓——", "✓——", "✗——"),
    _row("任务 编号", "command", "lead", "✓公?", "✓公?", "✓公?", "✓✓?", "✓公?", "✗✗✗"),
    _row("接受 编号", "command", "invited", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("拒绝 编号 理由", "command", "invited", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("抽取 编号", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("确认抽取 编号 信标值", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("匹配 编号", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("快抽 N 名 执法人员", "command", "none", "✗——", "✓——", "✓——", "✓——", "✗——", "✗——"),
    _row("确认快抽 编号 数字", "command", "lead", "✓✓?", "✓✓?", "✓✓?", "✓✓?", "✓✓?", "✗✗✗"),
    _row("我的检查", "command", "none", "✓——", "✓——", "✓——", "✓——", "✓——", "✗——"),
    _row("通知书 案件号", "command", "lead", "✓✗?", "✓✗?", "✓✗?", "✓✓?", "✗✗?", "✗✗✗"),
    _row("检查 案件号 日期", "command", "lead", "✓✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("延期 编号 日期 理由", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✓✓?", "✗✗?", "✗✗✗"),
    _row("撤销 编号 理由", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✓✓?", "✗✗?", "✗✗✗"),
    _row("提交 案件号 结果", "command", "lead", "✓✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("通过 案件号", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("退回 案件号 理由", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("公示 编号", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("案件 案件号", "command", "lead", "✓✗?", "✓✗?", "✓✗?", "✓✓?", "✓✗?", "✗✗✗"),
    _row("异议 案件号 内容", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("复查 案件号 维持 情况", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("更正 案件号 结果 理由", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("答复 案件号", "command", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("移送 案件号 部门 线索", "command", "lead", "✓✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("签收 案件号", "command", "receiving", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("更换 案件号 人员 理由", "command", "lead", "✓✗?", "✓✗?", "✓✗?", "✓✓?", "✗✗?", "✗✗✗"),
    _row("批准 案件号 人员 新人员", "command", "lead", "✗✗?", "✗✗?", "✓✗?", "✓✓?", "✗✗?", "✗✗✗"),
    _row("不批准 案件号 人员 理由", "command", "lead", "✗✗?", "✗✗?", "✓✗?", "✓✓?", "✗✗?", "✗✗✗"),
    _row("回避 案件号 理由", "command", "lead", "✓✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("批准 案件号 回避人员", "command", "partner", "✗✗?", "✗✗?", "✓✗?", "✓✓?", "✗✗?", "✗✗✗"),
    _row("进度 编号", "command", "lead", "✓公?", "✓公?", "✓公?", "✓✓?", "✓公?", "✗✗✗"),
    _row("名单 编号", "command", "lead", "✓公?", "✓公?", "✓公?", "✓✓?", "✓公?", "✗✗✗"),
    _row("验证 编号", "command", "lead", "✓公?", "✓公?", "✓公?", "✓✓?", "✓公?", "✗✗✗"),
    _row("汇总", "command", "none", "✗——", "✗——", "✓——", "✓——", "✗——", "✗——"),
    _row("绑定 人员 平台 账号", "command", "lead", "✗✗✗", "✗✗✗", "✗✗✗", "✓✓?", "✗✗✗", "✗✗✗"),
    _row("解绑 人员 平台", "command", "lead", "✗✗✗", "✗✗✗", "✗✗✗", "✓✓?", "✗✗✗", "✗✗✗"),
    _row("发起 计划编号", "command", "lead", "✗✗✗", "✓✗?", "✓✗?", "✓✓?", "✗✗✗", "✗✗✗"),
    _row("检查配置", "command", "none", "✗——", "✗——", "✓——", "✓——", "✗——", "✗——"),
    _row("年度考核", "command", "none", "✗——", "✗——", "✓——", "✓——", "✗——", "✗——"),
    _row("离岗 人员", "command", "lead", "✗✗✗", "✗✗✗", "✗✗✗", "✓✓?", "✗✗✗", "✗✗✗"),
    _row("利害关系 信用代码 说明", "command", "none", "✓——", "✓——", "✓——", "✓——", "✓——", "✗——"),
    _row("取消", "command", "none", "✓——", "✓——", "✓——", "✓——", "✓——", "✗——"),
    _row("接受 按钮", "card", "invited", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("拒绝 按钮", "card", "invited", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("/h5/invitation 查看", "page", "invited", "✗✗?", "✓✗?", "✓✗?", "✓✓?", "✗✗?", "✗✗✗"),
    _row("/h5/invitation 答复", "page", "invited", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("/h5/result 查看", "page", "lead", "✓✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("/h5/result 提交", "page", "lead", "✓✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("/h5/result/file 附件", "page", "lead", "✓✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("/h5/correction 查看", "page", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("/h5/correction 提交", "page", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("/h5/correction/file 附件", "page", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("/h5/review 查看", "page", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("/h5/review 审核", "page", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("/h5/review/file 附件", "page", "lead", "✗✗?", "✓✗?", "✓✗?", "✗✗?", "✗✗?", "✗✗✗"),
    _row("/h5/documents", "page", "lead", "✓✗?", "✓✗?", "✓✗?", "✓✓?", "✗✗?", "✗✗✗"),
    _row("/h5/image", "page", "none", "✓——", "✓——", "✓——", "✓——", "✓——", "✗——"),
    _row("/public/", "page", "none", "✓——", "✓——", "✓——", "✓——", "✓——", "✓——"),
]


def render() -> str:
    """The README's matrix: one line per action, one column per role, each cell the outcomes
    for own / other / unknown."""
    lines = [
        "| action | " + " | ".join(ROLES) + " |",
        "|---|" + "---|" * len(ROLES),
    ]
    for row in MATRIX:
        label = f"`{row.action}`" if row.kind == "command" else row.action
        lines.append(f"| {label} | " + " | ".join(" ".join(c) for c in row.cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())

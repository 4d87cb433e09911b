"""The command table: words, aliases, usage lines and examples (帮助 is generated from it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from core.consultation import CHAT_HOW, WHEN
from core.jointtask import LISTED_CASES
from core.models import Conversation
from core.referrals import REFERRERS
from handlers import (
    admin,
    cases,
    county,
    documents,
    draws,
    help,
    inspection,
    invitations,
    objections,
    referrals,
    replacements,
    results,
    reviews,
    summary,
    tasks,
)
from handlers.base import Args, Command, HandlerCtx


async def _help(ctx: HandlerCtx, args: Args) -> None:
    await help.show(ctx, args, COMMANDS)


async def _nothing_to_cancel(ctx: HandlerCtx, args: Args) -> None:
    await ctx.say("cmd_cancelled.md.j2", had_step=False)


COMMANDS: list[Command] = [
    Command(
        "帮助",
        ("help", "?", "菜单", "bz"),
        "帮助 [指令|全部]",
        "帮助 拒绝",
        "列出您的角色可用的指令；“帮助 全部”列出全部指令；后跟指令名查看该指令的用法",
        _help,
        reads_only=True,
    ),
    Command(
        "任务",
        ("rw", "tasks"),
        "任务 [编号]",
        "任务 LJ-2026-001",
        "本部门的联合抽查任务和待答复的邀请；带编号查看任务详情",
        tasks.list_or_show,
        reads_only=True,
    ),
    Command(
        "接受",
        ("js", "accept"),
        "接受 编号 [事项代码…]",
        "接受 LJ-2026-001 WJ-01 WJ-02",
        "接受联合抽查邀请；不写事项代码时按本部门重点事项参加（联络员、分管领导）",
        invitations.accept,
        roles=("liaison", "leader"),
    ),
    Command(
        "拒绝",
        ("jj", "decline"),
        "拒绝 编号 理由",
        "拒绝 LJ-2026-001 本季度执法力量已全部投入专项整治",
        "拒绝联合抽查邀请，须书面说明理由；只写编号时机器人会询问理由",
        invitations.decline,
        roles=("liaison", "leader"),
    ),
    Command(
        "抽取",
        ("cq", "freeze"),
        "抽取 编号 [信标来源]",
        "抽取 LJ-2026-001 2026年3月3日福彩3D开奖号码",
        "冻结抽取范围并公告范围、排除情况、范围哈希、规则、承诺值和信标来源（牵头部门）；"
        "不写信标来源时默认为次日福彩3D开奖号码；信标值公布后不能重新冻结（抽取范围或规则有变化的除外）",
        draws.freeze,
        roles=("liaison", "leader"),
    ),
    Command(
        "确认抽取",
        ("qrcq", "confirm"),
        "确认抽取 编号 信标值",
        "确认抽取 LJ-2026-001 386",
        "输入公布的信标值，完成抽取并锁定，随即匹配执法检查人员并推送分工（牵头部门）",
        draws.confirm,
        roles=("liaison", "leader"),
    ),
    Command(
        "匹配",
        ("pp", "match"),
        "匹配 编号",
        "匹配 LJ-2026-001",
        "抽取锁定后匹配执法检查人员；锁定时匹配失败（如某部门人员不足）补充人员后重试（牵头部门）",
        draws.match,
        roles=("liaison", "leader"),
    ),
    Command(
        "快抽",
        ("kc",),
        "快抽 N 名 执法人员 [部门] [标签] ／ 快抽 N 户 对象 [行业] [区域] [信标 信标来源]",
        "快抽 2 户 对象 餐饮 城关",
        "临时随机抽取执法检查人员或检查对象：先在部门群公布种子承诺值，再由发起人以外的一名人员"
        "用“确认快抽”提供数字（或写明日期的公开信标）确定结果；回执列出当天相同条件的快抽次数"
        "（联络员、分管领导、管理员发起）",
        draws.quick,
        roles=("liaison", "leader", "admin"),
    ),
    Command(
        "确认快抽",
        ("qrkc",),
        "确认快抽 快抽编号 数字",
        "确认快抽 KC-2026-0001 4711",
        "为同事发起的快抽提供一个自定的数字，完成抽取并锁定（发起人以外的任何人员；"
        "使用公开信标的快抽由发起人录入信标值）",
        draws.confirm_quick,
    ),
    Command(
        "我的检查",
        ("wdjc", "cases"),
        "我的检查",
        "我的检查",
        "分配给我的检查对象、状态和结果录入期限",
        cases.mine,
        reads_only=True,
    ),
    Command(
        "通知书",
        ("tzs", "notice", "文书"),
        "通知书 案件号",
        "通知书 LJ-2026-001-003",
        "重新获取案件的联合抽查通知书和检查记录表（网页打印或下载 Word；"
        "检查组成员、本任务各部门联络员、分管领导，管理员）",
        documents.notice,
        roles=("inspector", "liaison", "leader", "admin"),
    ),
    Command(
        "检查",
        ("jc", "inspected"),
        "检查 案件号 检查日期",
        "检查 LJ-2026-001-003 3月20日",
        "登记到场检查的日期，结果录入期限从这天起算 20 个工作日（检查组成员）",
        inspection.inspected,
        roles=("inspector",),
    ),
    Command(
        "延期",
        ("yq", "extend"),
        "延期 编号 截止日期 理由",
        "延期 LJ-2026-001 5月15日 汛期部分企业停产，需顺延检查",
        "延长任务的检查时间并写明理由（牵头部门联络员、分管领导，管理员）",
        inspection.extend,
        roles=("liaison", "leader", "admin"),
    ),
    Command(
        "撤销",
        ("cx", "withdraw"),
        CHAT_HOW.format(code="编号", reason="理由"),
        CHAT_HOW.format(code="LJ-2026-004", reason="任务文件重复执行，与 LJ-2026-003 重复"),
        f"{WHEN}（牵头部门联络员、分管领导，管理员）",
        tasks.withdraw,
        roles=("liaison", "leader", "admin"),
    ),
    Command(
        "提交",
        ("tj", "submit"),
        "提交 案件号 结果 [检查日期]",
        "提交 LJ-2026-001-003 未发现问题 3月20日",
        "快速录入本部门事项无需问题详情的结果（未发现问题、注销等）；不配合检查情节严重须在其后"
        "写明后续处置（如：不配合检查情节严重 抄告相关部门）；检查日期可写今天、昨天、前天；"
        "各部门都录入后送审核（谁检查、谁录入）",
        results.submit,
        roles=("inspector",),
    ),
    Command(
        "通过",
        ("tg", "approve"),
        "通过 案件号",
        "通过 LJ-2026-001-003",
        "审核通过检查组提交的结果（牵头部门、参与部门的联络员、分管领导）",
        reviews.approve,
        roles=("liaison", "leader"),
    ),
    Command(
        "退回",
        ("th", "return"),
        "退回 案件号 [部门] 理由",
        "退回 LJ-2026-001-003 卫健委 公共场所卫生事项缺少检测记录",
        "写明理由把结果退回检查组重新核实；理由前写本案的部门时只退回该部门录入的部分（牵头部门、参与部门的联络员、分管领导）",
        reviews.send_back,
        roles=("liaison", "leader"),
    ),
    Command(
        "公示",
        ("gs", "publish"),
        "公示 编号",
        "公示 LJ-2026-001",
        "公示任务中全部审核通过的检查结果（牵头部门）",
        reviews.publish,
        roles=("liaison", "leader"),
    ),
    Command(
        "案件",
        ("aj", "case"),
        "案件 案件号",
        "案件 LJ-2026-001-003",
        "查看一个案件：检查对象、检查组、检查日期、录入期限、结果各版本、异议、移送和记录；"
        "待审核时联络员、分管领导另得审核页面链接（牵头部门、参与部门人员）",
        objections.show,
    ),
    Command(
        "异议",
        ("yy", "objection"),
        "异议 案件号 异议内容 [收到日期]",
        "异议 LJ-2026-001-003 企业称检查前已公示许可信息 3月20日",
        "登记检查对象对公示结果的书面异议（公示之日起60日内；牵头部门联络员、分管领导）；"
        "收到日期写在最后或紧跟案件号（异议 案件号 3月20日 异议内容），不写按今天计",
        objections.file,
        roles=("liaison", "leader"),
    ),
    Command(
        "复查",
        ("fc", "recheck"),
        "复查 案件号 维持|有误 复查情况",
        "复查 LJ-2026-001-003 维持 经核对检查记录，原结果无误",
        "登记异议复查结论（收到异议后20个工作日内；牵头部门联络员、分管领导）",
        objections.recheck,
        roles=("liaison", "leader"),
    ),
    Command(
        "更正",
        ("gz", "correct"),
        "更正 案件号 [更正后结果 更正理由]",
        "更正 LJ-2026-001-003 未发现问题 复查发现原记录有误",
        "更正已公示结果中本部门的事项（复查有误后5个工作日内；牵头部门、参与部门联络员、"
        "分管领导）；发现问题的结果只发送案件号，打开更正表单填写",
        objections.correct,
        roles=("liaison", "leader"),
    ),
    Command(
        "答复",
        ("df", "reply"),
        "答复 案件号 [答复方式]",
        "答复 LJ-2026-001-003 已电话告知企业",
        "登记已向异议人反馈复查情况，可写明答复方式（复查后15个工作日内；"
        "牵头部门联络员、分管领导）",
        objections.reply,
        roles=("liaison", "leader"),
    ),
    Command(
        "移送",
        ("ys", "refer"),
        "移送 案件号 部门 线索",
        "移送 LJ-2026-001-003 卫健 该店未取得公共场所卫生许可",
        f"把检查中发现的属其他部门管辖的问题移送该部门，对方须签收（{REFERRERS}）",
        referrals.refer,
        roles=("inspector", "liaison", "leader"),
    ),
    Command(
        "签收",
        ("qs", "acknowledge"),
        "签收 案件号",
        "签收 LJ-2026-001-003",
        "确认收到移送给本部门的线索（接收部门联络员、分管领导）",
        referrals.acknowledge,
        roles=("liaison", "leader"),
    ),
    Command(
        "更换",
        ("gh", "replace"),
        "更换 案件号 人员编号 理由",
        "更换 LJ-2026-001-003 SJ003 长期病假无法到岗",
        "申请更换检查组中的执法检查人员，由该部门分管领导批准（检查组成员、该人员所在部门联络员、分管领导，管理员）",
        replacements.ask,
        roles=("inspector", "liaison", "leader", "admin"),
    ),
    Command(
        "批准",
        ("pz",),
        "批准 案件号 人员编号 [新人员编号]",
        "批准 LJ-2026-001-003 SJ003 SJ004",
        "批准更换申请并指定替换人员，或批准回避申请（按抽取顺序由下一名人员接替，不指定）（该部门分管领导，管理员）",
        replacements.approve,
        roles=("leader", "admin"),
    ),
    Command(
        "不批准",
        ("bpz",),
        "不批准 案件号 人员编号 理由",
        "不批准 LJ-2026-001-003 SJ003 病假一周内结束，不影响检查期限",
        "不批准更换或回避申请，须写明理由，该人员留在检查组（该部门分管领导，管理员）",
        replacements.refuse,
        roles=("leader", "admin"),
    ),
    Command(
        "回避",
        ("hb", "recuse"),
        "回避 案件号 理由",
        "回避 LJ-2026-001-003 本人与该企业负责人系近亲属",
        "本人与检查对象有利害关系的，申请回避；经本部门分管领导批准后按抽取顺序由下一名执法检查人员替换",
        replacements.recuse,
        roles=("inspector",),
    ),
    Command(
        "进度",
        ("jd", "progress"),
        "进度 编号",
        "进度 LJ-2026-001",
        "任务的邀请答复、检查和结果录入进度",
        tasks.progress,
        reads_only=True,
    ),
    Command(
        "名单",
        ("md", "roster"),
        "名单 编号 [页码]",
        "名单 LJ-2026-001 2",
        f"任务的检查对象名单和检查组，每页 {LISTED_CASES} 户（牵头部门、参与部门人员）",
        tasks.roster,
        reads_only=True,
    ),
    Command(
        "验证",
        ("yz", "verify"),
        "验证 抽取号",
        "验证 KC-2026-0001",
        "复算一次抽取，逐项核对范围哈希、承诺值、信标和结果",
        draws.check,
    ),
    Command(
        "汇总",
        ("hz", "summary"),
        "汇总",
        "汇总",
        "本部门联合抽查工作汇总：任务、邀请、检查进度、逾期和异议（分管领导）",
        summary.show,
        roles=("leader", "admin"),
    ),
    Command(
        "绑定",
        ("bd", "bind"),
        "绑定 人员编号 企业微信|钉钉 账号",
        "绑定 SJ003 企业微信 zhangsan",
        "把平台账号绑定到人员（联席会议办公室管理员）",
        admin.bind,
        roles=("admin",),
    ),
    Command(
        "解绑",
        ("jb", "unbind"),
        "解绑 人员编号 企业微信|钉钉",
        "解绑 SJ003 钉钉",
        "解除人员的平台账号绑定，绑错人或换了账号时先解绑再绑定（联席会议办公室管理员）",
        admin.unbind,
        roles=("admin",),
    ),
    Command(
        "发起",
        ("fq", "start"),
        "发起 计划编号 [年度]",
        "发起 JH-2026-01",
        "按年度抽查计划创建联合抽查任务并邀请参与部门（牵头部门的联络员、分管领导，管理员）；"
        "不写年度时为今天所在年度的计划",
        county.start,
        roles=("liaison", "leader", "admin"),
    ),
    Command(
        "检查配置",
        ("jcpz", "setup"),
        "检查配置",
        "检查配置",
        "列出开展联合抽查前尚未就绪的配置：人员、账号、事项清单、部门群、检查对象、节假日"
        "（管理员、分管领导）",
        county.setup_check,
        roles=("leader", "admin"),
    ),
    Command(
        "年度考核",
        ("ndkh", "report"),
        "年度考核 [年份]",
        "年度考核 2026",
        "各部门本年度牵头、参与、拒绝、按时录入等考核统计（管理员、分管领导）",
        county.evaluation,
        roles=("leader", "admin"),
    ),
    Command(
        "离岗",
        ("lg", "leave"),
        "离岗 人员编号 [原因]",
        "离岗 SJ003 调离",
        "人员离岗、调离后停用（不删除、不再被抽取），列出需更换人员的案件（联席会议办公室管理员）",
        admin.leave,
        roles=("admin",),
    ),
    Command(
        "利害关系",
        ("lhgx", "conflict", "申报回避", "sbhb"),
        "利害关系 统一社会信用代码 关系说明",
        "利害关系 91330424MA28AQAQXU 本人配偶在该企业任职",
        "申报本人与某检查对象的利害关系，今后不会被分到该对象的检查",
        admin.conflict,
    ),
    Command(
        "取消",
        ("cancel", "qx"),
        "取消",
        "取消",
        "放弃正在进行的操作（如填写拒绝理由）",
        _nothing_to_cancel,
        hidden=True,
    ),
]

StepHandler = Callable[[HandlerCtx, Conversation], Awaitable[None]]

STEPS: dict[str, StepHandler] = {
    invitations.DECLINE_STEP: invitations.on_decline_reason,
}

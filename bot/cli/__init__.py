"""`lianjian` command line, parser and entry: the Chinese argparse parser, every subcommand
wired to its handler (bot/cli/serve, setup, draws, tasks, operations), and how errors and
exit codes reach the operator."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from bot.cli.common import FORCE_HELP, CliError, Handler
from bot.cli.draws import (
    cmd_audit_show,
    cmd_audit_verify,
    cmd_draw_export_pool,
    cmd_draw_list,
    cmd_draw_show,
    cmd_draw_verify,
)
from bot.cli.operations import (
    cmd_chat_bind,
    cmd_chat_list,
    cmd_outbox_list,
    cmd_outbox_retry,
    cmd_report_year,
    cmd_summary,
)
from bot.cli.serve import cmd_demo, cmd_serve
from bot.cli.setup import (
    TEMPLATE_KINDS,
    cmd_db_backup,
    cmd_db_link_secret,
    cmd_db_upgrade,
    cmd_department_list,
    cmd_holidays_load,
    cmd_import,
    cmd_item_list,
    cmd_setup_check,
    cmd_template,
)
from bot.cli.tasks import (
    cmd_documents,
    cmd_export_archive,
    cmd_export_results,
    cmd_task_create,
    cmd_task_withdraw,
)
from core.bindings import PLATFORMS
from core.clock import SystemClock, parse_year
from core.consultation import WHEN, how_to_withdraw
from core.errors import DomainError, ValidationFailed, os_reason
from core.imports import IMPORT_ORDER
from core.workdays import ALLOW_EMPTY


def _date_arg(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"日期“{value}”格式不对，应为 YYYY-MM-DD，如 2026-12-07"
        ) from None


def _year_arg(value: str) -> int:
    """A plan, report or export year (core.clock.parse_year: 2000 up to next year)."""
    try:
        return parse_year(value, SystemClock().today())
    except ValidationFailed as err:
        raise argparse.ArgumentTypeError(err.message) from None


MIN_DEMO_TARGETS = 1000  # fewer leave the demo's strata or groups without enough targets


def _demo_targets(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"户数“{value}”应为整数") from None
    if n < MIN_DEMO_TARGETS:
        raise argparse.ArgumentTypeError(
            f"演示至少需要 {MIN_DEMO_TARGETS} 户检查对象（给出的是 {n}）"
        )
    return n


# an option's value as usage and help name it (argparse's default is the dest in capitals)
OPTION_VALUES = {
    "db": "数据库",
    "config": "配置文件",
    "output": "输出",
    "out": "输出目录",
    "rejects": "拒收文件",
    "year": "年度",
    "host": "地址",
    "port": "端口",
    "seed": "种子",
    "targets": "户数",
    "department": "部门",
    "leader": "领导",
    "webhook": "地址",
    "secret": "密钥",
    "date": "日期",
}


def choice_list(choices: Sequence[str]) -> str:
    """Choices in a help text, spaced so that a wrapped line breaks between them, not inside
    one (a run of Chinese and "、" has no place to break: "c / onflicts")."""
    return " / ".join(choices)


class ChineseHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Chinese usage prefix and option values; a description keeps its lines (holidays load
    shows a file)."""

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        return OPTION_VALUES.get(action.dest, "值")

    def add_usage(
        self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None
    ) -> None:
        # argparse passes prefix="" when it builds a subcommand's prog from its parent
        super().add_usage(usage, actions, groups, prefix="用法：" if prefix is None else prefix)


# argparse's own English messages, as operators read them (matched on argparse's wording)
ARGPARSE_ZH = (
    (re.compile(r"the following arguments are required: (.*)"), "缺少参数：{0}"),
    (
        re.compile(r"argument (\S+): invalid choice: '?([^']*)'? \(choose from (.*)\)"),
        "参数 {0} 的取值“{1}”无效，可选：{2}",
    ),
    (
        re.compile(r"invalid choice: '?([^']*)'? \(choose from (.*)\)"),
        "没有“{0}”这个命令，可用：{1}",
    ),
    (re.compile(r"unrecognized arguments: (.*)"), "无法识别的参数：{0}"),
    (re.compile(r"argument (\S+): expected one argument"), "参数 {0} 后面需要一个值"),
    (re.compile(r"argument (\S+): invalid (\w+) value: '?([^']*)'?"), "参数 {0} 的值“{2}”格式不对"),
    (re.compile(r"argument (\S+): (.*)"), "参数 {0}：{1}"),  # our own (Chinese) type errors
)


class ChineseArgumentParser(argparse.ArgumentParser):
    """Usage, help and errors in Chinese; an error prints the usage and exits 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", ChineseHelpFormatter)
        kwargs.setdefault("add_help", False)
        super().__init__(*args, **kwargs)
        self.add_argument("-h", "--help", action="help", help="显示帮助并退出")
        self._positionals.title = "参数"
        self._optionals.title = "选项"

    def error(self, message: str) -> NoReturn:
        for pattern, text in ARGPARSE_ZH:
            if match := pattern.search(message):
                message = text.format(*match.groups())
                break
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}：错误：{message}\n运行 {self.prog} -h 查看说明\n")


DEPARTMENT_HELP = "部门编号、全称、简称或通用叫法（如 WJ、县卫生健康局、卫健委、环保局）"
JSON_HELP = "以 JSON 输出（供脚本读取）"
DRAW_HELP = "抽取编号（如 LJ-2026-001-T1）、ID，或任务编号（取其检查对象抽取）"


def _parser() -> argparse.ArgumentParser:
    p = ChineseArgumentParser(
        prog="lianjian", description="联检：部门联合“双随机、一公开”抽查机器人"
    )
    sub = p.add_subparsers(
        dest="command",
        required=True,
        title="命令",
        metavar="命令",
        parser_class=ChineseArgumentParser,
    )

    def add(
        name: str,
        fn: Handler | Callable[[argparse.Namespace], int],
        help_: str,
        parent: Any = sub,
        db: bool = True,
    ) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = parent.add_parser(name, help=help_)
        if db:
            sp.add_argument(
                "--db", help="SQLite 数据库文件路径，或 postgresql://用户:密码@主机:端口/库名"
            )
            sp.add_argument("--config", help="config.toml 路径")
        sp.set_defaults(fn=fn, command_parser=sp)
        return sp

    def group(name: str, help_: str) -> Any:
        """A command with subcommands (`db upgrade`, `task create`, …)."""
        return sub.add_parser(name, help=help_).add_subparsers(
            dest="sub", required=True, title="子命令", metavar="子命令"
        )

    s = add("serve", cmd_serve, "启动机器人服务（含本地模拟器）")
    s.add_argument("--host", help="监听地址（默认取配置的 host，127.0.0.1 只许本机访问）")
    s.add_argument("--port", type=int, help="监听端口（默认取配置的 port，如 8080）")
    s.add_argument("--demo", action="store_true", help="先载入演示数据，便于在模拟器中体验")

    d = add("demo", cmd_demo, "生成模拟县域数据并完整演示一次联合抽查", db=False)
    d.add_argument("--db", help="SQLite 文件（默认临时目录）")
    d.add_argument(
        "--seed",
        type=int,
        default=2026,
        help="生成模拟数据的随机种子，同一种子数据相同（默认 2026）",
    )
    d.add_argument(
        "--targets",
        type=_demo_targets,
        default=20000,
        help=f"检查对象户数（至少 {MIN_DEMO_TARGETS}，默认 20000）",
    )

    db = group("db", "数据库")
    add("upgrade", cmd_db_upgrade, "执行数据库迁移", parent=db)
    add(
        "link-secret",
        cmd_db_link_secret,
        "有意更换签名链接密钥后，把新密钥记为这个数据库的（此前的链接失效）",
        parent=db,
    )
    bk = add(
        "backup", cmd_db_backup, "备份数据库：服务运行中也能得到一致的副本（SQLite）", parent=db
    )
    bk.add_argument("output", metavar="备份文件", help="备份文件（已有的文件不覆盖）")

    imp = add("import", cmd_import, "批量导入（CSV / XLSX）")
    imp.add_argument(
        "kind",
        choices=IMPORT_ORDER,
        metavar="种类",
        help="导入的数据种类：" + choice_list(IMPORT_ORDER),
    )
    imp.add_argument(
        "file",
        metavar="文件",
        help="要导入的文件（.csv 或 .xlsx，可用 lianjian template 生成模板）",
    )
    imp.add_argument("--skip-invalid", action="store_true", help="导入合格行，不合格行写入拒收文件")
    imp.add_argument(
        "--rejects",
        help="拒收文件路径，.csv 或 .xlsx（默认 原文件名.rejects.csv）",
    )
    imp.add_argument(
        "--show-errors", type=int, default=50, metavar="条数", help="最多列出多少条错误（默认 50）"
    )
    imp.add_argument("--year", type=_year_arg, help="年度抽查计划的年度（默认今年）")
    imp.add_argument(
        "--past-year", action="store_true", help="确认补录往年的年度抽查计划（否则拒绝导入）"
    )

    tp = add(
        "template",
        cmd_template,
        "生成导入模板（XLSX，含示例行和填写说明）；task 生成任务文件示例（TOML）",
        db=False,
    )
    tp.add_argument(
        "kind",
        choices=list(TEMPLATE_KINDS),
        metavar="种类",
        help="模板种类：" + choice_list(list(TEMPLATE_KINDS)),
    )
    tp.add_argument(
        "-o", "--output", required=True, help="输出文件（导入模板 .xlsx，task 为 .toml）"
    )
    tp.add_argument("--force", action="store_true", help=FORCE_HELP)

    st = group("setup", "上线准备")
    add("check", cmd_setup_check, "检查开展第一次联合抽查前还缺什么（未就绪时返回非零）", parent=st)

    dp = group("department", "部门")
    add(
        "list",
        cmd_department_list,
        "列出部门编号、全称和简称（任务文件的 lead、invite）",
        parent=dp,
    )
    it = group("item", "抽查事项")
    add(
        "list", cmd_item_list, "列出一个部门的现行抽查事项（任务文件的 items）", parent=it
    ).add_argument("department", metavar="部门", help=DEPARTMENT_HELP)

    rp = group("report", "统计报表")
    ry = add("year", cmd_report_year, "年度考核统计（XLSX）", parent=rp)
    ry.add_argument("--year", type=_year_arg, help="年度（默认今年）")
    ry.add_argument("-o", "--output", required=True, help="输出文件（.xlsx）")
    ry.add_argument("--force", action="store_true", help=FORCE_HELP)

    dr = group("draw", "抽取记录与验证")
    add("list", cmd_draw_list, "列出抽取记录", parent=dr).add_argument(
        "--json", action="store_true", help=JSON_HELP
    )
    show = add("show", cmd_draw_show, "显示一次抽取的公开参数", parent=dr)
    show.add_argument("draw", metavar="抽取", help=DRAW_HELP)
    show.add_argument("--json", action="store_true", help=JSON_HELP)
    ex = add("export-pool", cmd_draw_export_pool, "导出抽取池（id,stratum）", parent=dr)
    ex.add_argument("draw", metavar="抽取", help=DRAW_HELP)
    ex.add_argument("-o", "--output", required=True, help="输出文件（.csv）")
    ex.add_argument("--force", action="store_true", help=FORCE_HELP)
    add("verify", cmd_draw_verify, "重算并核对一次抽取", parent=dr).add_argument(
        "draw", metavar="抽取", help=DRAW_HELP
    )

    au = group("audit", "审计日志")
    add("verify", cmd_audit_verify, "校验审计日志哈希链", parent=au)
    aus = add("show", cmd_audit_show, "查看一个任务或案件的审计记录", parent=au)
    aus.add_argument(
        "code", metavar="编号", help="任务编号（如 LJ-2026-001）或案件号（如 LJ-2026-001-003）"
    )
    aus.add_argument("--json", action="store_true", help=JSON_HELP)

    ho = group("holidays", "节假日数据")
    hl = add("load", cmd_holidays_load, "载入某年节假日安排（TOML/JSON）", parent=ho)
    hl.description = (
        "载入国务院办公厅公布的某年节假日安排，用于计算工作日期限。文件为 UTF-8 或 GBK 文本：\n"
        "  year = 2027\n"
        '  holidays = ["2027-01-01", "2027-02-05..2027-02-11"]   # 放假日期，可写起止范围\n'
        '  workdays = ["2027-02-14"]                            # 调休上班的周末\n'
        '  source = "国务院办公厅关于2027年部分节假日安排的通知"\n'
        "JSON 文件（.json）写同样的键，不认识的键拒绝载入。\n"
        "lianjian template holidays -o 节假日.toml 生成带说明的示例。"
    )
    hl.add_argument("file", metavar="文件", help="节假日文件（.toml 或 .json）")
    hl.add_argument(
        ALLOW_EMPTY,
        action="store_true",
        help="确认载入没有放假日期的年度（每年都有法定节假日，通常是文件写错了）",
    )

    tk = group("task", "联合抽查任务")
    tc = add(
        "create",
        cmd_task_create,
        "按任务文件（TOML，lianjian template task -o 任务.toml 生成示例）创建任务并发出邀请",
        parent=tk,
    )
    tc.add_argument("file", metavar="任务文件", help="任务文件（.toml）")
    tc.add_argument(
        "--again",
        action="store_true",
        help=(
            "确认再建一个与已有任务相同的任务（牵头部门、名称、检查时间、抽查范围、规则和事项"
            "都相同；默认拒绝重复创建，此前只建了草稿的则继续发出邀请）"
        ),
    )
    tw = add("withdraw", cmd_task_withdraw, WHEN, parent=tk)
    tw.description = f"{WHEN}。{how_to_withdraw()}"
    tw.add_argument("code", metavar="编号", help="任务编号")
    tw.add_argument(
        "--reason", metavar="理由", required=True, help="撤销理由（通知受邀部门，记入审计）"
    )

    dc = add(
        "documents", cmd_documents, "生成任务或案件的联合抽查通知书和检查记录表（Word 与网页）"
    )
    dc.add_argument("code", metavar="编号", help="任务编号（整套）或案件号")
    dc.add_argument(
        "-o", "--output", required=True, help="输出目录（可以是新的，所在的文件夹须已有）"
    )
    dc.add_argument(
        "--force", action="store_true", help="覆盖输出目录中已有的同名文件（默认不覆盖）"
    )
    dc.add_argument(
        "--served",
        action="store_true",
        help="同时登记这些通知书已送达被检查对象（尚未检查的案件改为“已通知”，记入审计）",
    )

    xp = group("export", "导出与归档")
    er = add(
        "results",
        cmd_export_results,
        "导出某年度已公示的检查结果（省级平台结果录入格式 XLSX）",
        parent=xp,
    )
    er.add_argument("--year", type=_year_arg, required=True, help="导出哪一年度的检查结果")
    er.add_argument("--department", help=f"{DEPARTMENT_HELP}：只导出该部门发起或参加的任务")
    er.add_argument("-o", "--output", required=True, help="输出文件（.xlsx 或 .csv）")
    er.add_argument("--force", action="store_true", help=FORCE_HELP)
    ea = add("archive", cmd_export_archive, "任务立卷归档（ZIP），归档后任务办结", parent=xp)
    ea.add_argument("task", metavar="任务编号", help="任务编号")
    ea.add_argument("-o", "--output", required=True, help="输出文件（.zip），已有的文件不覆盖")

    ch = group("chat", "部门群 / 办公室群机器人")
    cb = add("bind", cmd_chat_bind, "绑定群机器人 Webhook（新绑定替换旧绑定）", parent=ch)
    cb.add_argument("to", metavar="部门", help=f"{DEPARTMENT_HELP}，或 office 表示联席会议办公室群")
    cb.add_argument(
        "--platform",
        required=True,
        choices=PLATFORMS,
        help="群所在的平台：" + choice_list(PLATFORMS),
    )
    cb.add_argument("--webhook", required=True, help="机器人 Webhook 地址（含 key / access_token）")
    cb.add_argument("--secret", help="钉钉机器人加签密钥（SEC 开头）")
    add("list", cmd_chat_list, "列出群机器人绑定", parent=ch)

    ob = group("outbox", "发件箱")
    add("list", cmd_outbox_list, "列出消息", parent=ob).add_argument(
        "--dead", action="store_true", help="只列出死信（多次发送失败、已停止重试的消息）"
    )
    rt = add("retry", cmd_outbox_retry, "重新发送死信", parent=ob)
    rt.add_argument("ids", type=int, nargs="*", metavar="消息编号", help="消息编号，可写多个")
    rt.add_argument("--all-dead", action="store_true", help="重新发送全部死信")

    su = add("summary", cmd_summary, "领导日报：打印，或按领导写出 .md 和 .png")
    su.add_argument(
        "--date", type=_date_arg, help="日期 YYYY-MM-DD：只能是今天（日报按当前状态统计）"
    )
    su.add_argument("--leader", help="领导的人员编号或姓名（默认全部）")
    su.add_argument("--out", help="输出目录：每位领导一个 .md 和一个 .png")
    su.add_argument(
        "--force", action="store_true", help="覆盖输出目录中已有的同名文件（默认不覆盖）"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    args, extra = _parser().parse_known_args(argv)
    if extra:  # told with the command's own usage: `template … --db` is the template's error
        args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        result = args.fn(args)
        code = asyncio.run(result) if asyncio.iscoroutine(result) else result
    except DomainError as err:
        print(f"错误：{err.message}", file=sys.stderr)
        return 2
    except CliError as err:
        print(f"错误：{err}", file=sys.stderr)
        return 2
    except ValidationError as err:
        # pydantic's own text is English and echoes each input (an AES key, a secret)
        from core.validation_zh import plain_lines

        print(f"数据有误（{err.error_count()} 处）：", file=sys.stderr)
        for line in plain_lines(err):
            print(f"  {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `lianjian … | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # a file or folder named on the command line
        print(f"错误：{os_error_text(err)}", file=sys.stderr)
        return 2
    return int(code)


def os_error_text(err: OSError) -> str:
    """One Chinese line for what the operating system refused, naming the path."""
    reason = os_reason(err)
    return f"{err.filename}：{reason}" if err.filename and err.errno is not None else reason

"""The CLI as an operator meets it: Chinese usage and errors, exit 2, never a traceback, and no
database file created by a typo in --db."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own exits (usage errors, -h)
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "缺少参数"),
        (["frob"], "“frob”无效"),
        (["draw"], "缺少参数：子命令"),
        (["import", "frob", "x.csv"], "“frob”无效"),
        (["draw", "list", "--db"], "后面需要一个值"),
        (["summary", "--date", "2026-13-01"], "参数 --date：日期“2026-13-01”格式不对"),
        (["report", "year", "--year", "1800", "-o", "r.xlsx"], "参数 --year：年度“1800”不在 2000–"),
        (["report", "year", "--year", "2999", "-o", "r.xlsx"], "年度“2999”不在 2000–"),
        (["export", "results", "--year", "二〇二六", "-o", "r.xlsx"], "年度“二〇二六”应为整数"),
    ],
)
def test_usage_errors_are_chinese_and_show_the_usage(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and says in err and err.startswith("用法：lianjian")


def test_an_option_the_command_does_not_take_is_told_with_that_commands_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`template … --db` (templates are blank sheets, no database) used to show the top-level
    usage, as if the command itself were wrong."""
    code, _, err = run_cli(
        ["template", "departments", "-o", str(tmp_path / "d.xlsx"), "--db", "x"], capsys
    )
    assert code == 2 and err.startswith("用法：lianjian template")
    assert "lianjian template：错误：无法识别的参数：--db x" in err
    assert not (tmp_path / "d.xlsx").exists()


def test_a_missing_folder_or_file_is_named_and_nothing_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["draw", "list", "--db", str(tmp_path / "nope" / "x.sqlite3")], capsys)
    assert code == 2 and "文件夹不存在" in err
    missing = tmp_path / "typo.sqlite3"
    code, _, err = run_cli(["audit", "verify", "--db", str(missing)], capsys)
    assert code == 2 and "lianjian db upgrade" in err and not missing.exists()


def test_an_sqlite_url_works_like_its_path_and_a_typo_in_it_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--db sqlite:///…` (and LIANJIAN_DATABASE_URL so written) is an SQLAlchemy URL as the
    README allows, but it named the synchronous driver: every command ended in a traceback. A
    typo in the URL's file skipped the checks a path gets and created an empty database."""
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    assert run_cli(["db", "upgrade", "--db", url], capsys)[0] == 0
    code, out, _ = run_cli(["audit", "verify", "--db", url], capsys)
    assert code == 0 and "哈希链校验通过" in out
    typo = tmp_path / "typo.sqlite3"
    code, _, err = run_cli(["audit", "verify", "--db", f"sqlite+aiosqlite:///{typo}"], capsys)
    assert code == 2 and "lianjian db upgrade" in err and not typo.exists()


def test_a_file_that_is_not_ours_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "notes.sqlite3"
    other.write_text("会议纪要", "utf-8")
    code, _, err = run_cli(["draw", "list", "--db", str(other)], capsys)
    assert code == 2 and "不是联检数据库" in err and other.read_text("utf-8") == "会议纪要"


def test_db_upgrade_creates_and_an_empty_draw_list_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "new.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    code, out, _ = run_cli(["draw", "list", "--db", db], capsys)
    assert code == 0 and "还没有任何抽取记录" in out


def test_draw_list_has_a_header_and_show_prints_a_receipt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "demo.sqlite3")
    assert run_cli(["demo", "--targets", "2000", "--db", db], capsys)[0] == 0
    code, out, _ = run_cli(["draw", "list", "--db", db], capsys)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["ID", "抽取编号", "类型"]
    code, out, _ = run_cli(["draw", "show", "LJ-2026-001", "--db", db], capsys)
    assert code == 0
    for label in (
        "种子承诺值：",
        "揭示的种子：",
        "抽取池：",
        "抽取规则：",
        "选中（",
        "复核：lianjian draw verify",
    ):
        assert label in out
    # each stratum as /public/draws describes it: the receipt called every one 风险等级 其余
    for line in (
        "重点关注：10%（向上取整），至少 1 户",
        "一般风险：3%（四舍五入）",
        "低风险：1%（向下取整）",
    ):
        assert f"  - {line}\n" in out
    assert "其余" not in out and "比例 0.10" not in out


@pytest.mark.parametrize("group", ["setup", "report", "db", "task", "export"])
def test_a_group_without_its_subcommand_names_it_in_chinese(
    group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lianjian setup` said “缺少参数：sub” (argparse's internal name)."""
    code, _, err = run_cli([group], capsys)
    assert code == 2 and "缺少参数：子命令" in err


def test_output_paths_that_cannot_be_written_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong -o / --out gets one Chinese line and exit 2, not an OSError's traceback:
    a missing folder, a file where a folder is wanted."""
    db = str(tmp_path / "c.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    missing = tmp_path / "nope" / "r.xlsx"
    argv = ["export", "results", "--year", "2026", "-o", str(missing), "--db", db]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and f"{missing}：文件夹不存在" in err and not missing.parent.exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", "utf-8")
    code, _, err = run_cli(["summary", "--out", str(a_file), "--db", db], capsys)
    assert code == 2 and "已有同名的文件" in err and a_file.read_text("utf-8") == "x"


def test_an_export_is_written_in_the_format_its_name_says_or_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export results -o r.csv` wrote an Excel workbook named .csv (and one under a name with
    no extension): a .csv name gets a CSV of the same columns, a name saying no format this
    command writes is refused before any work, naming the formats; likewise the archive."""
    db = str(tmp_path / "c.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    as_csv = tmp_path / "r.csv"
    code, out, _ = run_cli(
        ["export", "results", "--year", "2026", "-o", str(as_csv), "--db", db], capsys
    )
    assert code == 0 and "CSV" in out
    assert as_csv.read_text("utf-8-sig").startswith("序号,任务编号,任务名称,")
    for name in ("r_noext", "r.txt"):
        argv = ["export", "results", "--year", "2026", "-o", str(tmp_path / name), "--db", db]
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and "须以 .xlsx（Excel 工作簿）或 .csv（CSV 表格）结尾" in err, err
        assert not (tmp_path / name).exists()
    code, _, err = run_cli(["export", "archive", "LJ-2026-001", "-o", "a", "--db", db], capsys)
    assert code == 2 and "须以 .zip（ZIP 压缩包）结尾" in err and "a.zip" in err


def test_a_case_number_given_for_a_task_is_named_with_its_tasks_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export archive LJ-2026-001-002` said 未找到任务: a case number where a task's is asked
    is told as such, with the task's number to write instead; nothing is written."""
    db = str(tmp_path / "c.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    out = tmp_path / "a.zip"
    argv = ["export", "archive", "lj-2026-001-002", "-o", str(out), "--db", db]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "LJ-2026-001-002 是案件号" in err and "LJ-2026-001" in err, err
    assert "未找到任务" not in err and not out.exists()
    code, _, err = run_cli(["export", "archive", "LJ-2026-009", "-o", str(out), "--db", db], capsys)
    assert code == 2 and "未找到任务 LJ-2026-009" in err


def test_serve_names_a_bad_database_or_config_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve --db` with a missing folder or a file that is not ours, and `serve --config`
    naming no file: one Chinese line and exit 2 (they were SQLAlchemy / FileNotFoundError
    tracebacks), and nothing created."""
    missing = tmp_path / "nope" / "x.sqlite3"
    code, _, err = run_cli(["serve", "--db", str(missing)], capsys)
    assert code == 2 and "数据库所在的文件夹不存在" in err and not missing.parent.exists()
    other = tmp_path / "notes.sqlite3"
    other.write_text("会议纪要", "utf-8")
    code, _, err = run_cli(["serve", "--db", str(other)], capsys)
    assert code == 2 and "不是联检数据库" in err and other.read_text("utf-8") == "会议纪要"
    code, _, err = run_cli(["serve", "--config", str(tmp_path / "none.toml")], capsys)
    assert code == 2 and "配置文件不存在" in err


def test_demo_names_a_missing_folder_and_too_few_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`demo --db` in a missing folder was an SQLAlchemy traceback; `--targets 10` or a
    negative number ended in IntegrityError / ValueError half-way through the demo."""
    missing = tmp_path / "nope" / "d.sqlite3"
    code, _, err = run_cli(["demo", "--db", str(missing)], capsys)
    assert code == 2 and "数据库所在的文件夹不存在" in err and not missing.parent.exists()
    for few in ("10", "-5"):
        fresh = tmp_path / f"d{few}.sqlite3"
        code, _, err = run_cli(["demo", "--targets", few, "--db", str(fresh)], capsys)
        assert code == 2 and "演示至少需要 1000 户检查对象" in err and not fresh.exists()


def test_unreadable_task_holiday_and_import_files_are_named_in_chinese(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operating system's and the parsers' English (“[Errno 2] No such file or
    directory”, “Expecting value: line 1 column 1”, “Is a directory”) no longer reaches the
    operator: the reason in Chinese, where in the file, and what the file should hold."""
    db = str(tmp_path / "c.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    garbage = tmp_path / "garbage.toml"
    garbage.write_text("这不是 = = 配置\n", "utf-8")
    cases = [
        (["task", "create", str(tmp_path / "none.toml")], "文件或文件夹不存在"),
        (["task", "create", str(garbage)], "第 1 行第"),
        (["holidays", "load", str(tmp_path / "none.json")], "文件或文件夹不存在"),
        (["holidays", "load", str(garbage)], "格式不对：应为 TOML（.toml）或 JSON"),
    ]
    for argv, says in cases:
        code, _, err = run_cli([*argv, "--db", db], capsys)
        assert code == 2 and says in err, err
        told = re.sub(r"lianjian [a-z ]+", "", err.split("：", 1)[1])  # a command to run is fine
        assert not re.search(r"[A-Za-z]{3,} [a-z]{3,}", told), err
    # a file that cannot be read at all is a wrong path like any other (exit 2); a file with bad
    # rows is the importer's report (exit 1)
    code, out, err = run_cli(["import", "targets", str(tmp_path), "--db", db], capsys)
    assert code == 2 and "无法打开文件：这是一个文件夹" in out + err
    code, out, err = run_cli(
        ["import", "targets", str(tmp_path / "无此文件.xlsx"), "--db", db], capsys
    )
    assert code == 2 and "文件或文件夹不存在" in out + err
    # the progress bar leaves nothing behind on a pipe or a log: the report is the first line
    assert out.startswith("检查对象导入（无此文件.xlsx）未完成"), repr(out[:40])


def test_documents_for_an_unknown_code_says_what_to_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lianjian documents TASK|CASE`: a task code that does not exist was refused as
    “找不到案件 LJ-2099-001”; the refusal names both and shows each form."""
    db = str(tmp_path / "c.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    out = tmp_path / "docs"
    code, _, err = run_cli(["documents", "lj-2099-001", "-o", str(out), "--db", db], capsys)
    assert code == 2 and "找不到任务或案件 LJ-2099-001" in err and "LJ-2026-001-001" in err
    assert not out.exists()


TASK_TOML = 'title = "特种设备安全联合抽查"\nlead = "SJ"\nwindow = ["2026-12-01", "2026-12-31"]\n'


def test_an_excel_or_gbk_file_given_as_task_holiday_or_config_file_is_told_in_chinese(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`task create 成员单位.xlsx`, a task file Notepad saved as GBK, and the same as
    `holidays load` or `--config` ended in a UnicodeDecodeError traceback. A GBK task or holiday
    file is read (as the CSV importers read GBK); an Excel file is named as such, with how to
    get the right file; a config file must be UTF-8 (its reader takes nothing else)."""
    db = str(tmp_path / "c.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    xlsx = tmp_path / "成员单位.xlsx"
    assert run_cli(["template", "departments", "-o", str(xlsx)], capsys)[0] == 0
    gbk_task = tmp_path / "task_gbk.toml"
    gbk_task.write_bytes((TASK_TOML + 'items = ["SJ-03"]\n[rule]\n').encode("gbk"))
    gbk_holidays = tmp_path / "h.toml"
    gbk_holidays.write_bytes(
        'year = 2027\nholidays = ["2027-01-01"]\nsource = "国务院办公厅通知"\n'.encode("gbk")
    )
    gbk_config = tmp_path / "config.toml"
    gbk_config.write_bytes("# 本县配置\nport = 8080\n".encode("gbk"))
    cases = [
        (["task", "create", str(xlsx), "--db", db], "成员单位.xlsx 是Excel 或 Word 文件"),
        (["task", "create", str(xlsx), "--db", db], "lianjian template task -o 任务.toml"),
        (["task", "create", str(gbk_task), "--db", db], "任务文件缺少：rule"),  # it was read
        (["holidays", "load", str(xlsx), "--db", db], "不是节假日文件"),
        (["holidays", "load", str(gbk_holidays), "--db", db], "已载入 2027 年节假日安排"),
        (["audit", "verify", "--config", str(xlsx)], "不是配置文件"),
        (["audit", "verify", "--config", str(gbk_config)], "不是 UTF-8 编码"),
    ]
    for argv, says in cases:
        code, out, err = run_cli(argv, capsys)
        assert says in out + err, (argv, out, err)
        assert code == (0 if "已载入" in says else 2)


def test_template_task_writes_the_example_task_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal of a wrong task file points at `template task`, so it must exist; like the
    sheet templates it writes into a folder that exists (README, "Output files")."""
    target = tmp_path / "任务.toml"
    code, out, _ = run_cli(["template", "task", "-o", str(target)], capsys)
    assert code == 0 and f"lianjian task create {target}" in out
    assert 'lead = "SJ"' in target.read_text("utf-8")


def test_an_excel_file_named_csv_is_told_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An XLSX saved under a .csv name was decoded as GB18030 garbage or “无法识别文件编码”."""
    db = str(tmp_path / "c.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    xlsx = tmp_path / "d.xlsx"
    assert run_cli(["template", "departments", "-o", str(xlsx)], capsys)[0] == 0
    named_csv = tmp_path / "d.csv"
    named_csv.write_bytes(xlsx.read_bytes())
    code, out, _ = run_cli(["import", "departments", str(named_csv), "--db", db], capsys)
    assert code == 2 and "文件名是 .csv，内容却是Excel 或 Word 文件" in out
    # and the other way round: CSV text under an .xlsx name was “无法读取 Excel 文件（BadZipFile）”
    named_xlsx = tmp_path / "退回.xlsx"
    named_xlsx.write_text("部门编码,部门名称\nSJ,县市场监督管理局\n", "utf-8")
    code, out, _ = run_cli(["import", "departments", str(named_xlsx), "--db", db], capsys)
    assert code == 2 and "文件名是 .xlsx，内容却是文本（如 CSV）：请把扩展名改为 .csv" in out


def test_template_does_not_overwrite_a_file_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`template items -o copy_items.xlsx` silently replaced the office's filled-in file."""
    filled = tmp_path / "copy_items.xlsx"
    for kind, path in (("items", filled), ("task", tmp_path / "任务.toml")):
        path.write_bytes(b"filled in by the office")
        code, _, err = run_cli(["template", kind, "-o", str(path)], capsys)
        assert code == 2 and "已存在，未覆盖" in err and "--force" in err
        assert path.read_bytes() == b"filled in by the office"
    code, _, _ = run_cli(["template", "items", "-o", str(filled), "--force"], capsys)
    assert code == 0 and filled.read_bytes().startswith(b"PK")


def test_output_files_take_the_format_their_name_says_or_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--rejects X_退回.xlsx` held CSV text, `template items -o items.csv` an XLSX (which the
    import it suggested then refused), `report year -o r.txt` an XLSX."""
    import openpyxl

    db = str(tmp_path / "c.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    targets = tmp_path / "检查对象.csv"
    targets.write_text("统一社会信用代码,名称\n91330424MA28AQAQX0,错误代码餐饮店\n", "utf-8")
    rejects = tmp_path / "检查对象_退回.xlsx"
    argv = ["import", "targets", str(targets), "--skip-invalid", "--rejects", str(rejects)]
    assert run_cli([*argv, "--db", db], capsys)[0] == 0
    sheet = openpyxl.load_workbook(rejects).worksheets[0]
    assert [c.value for c in sheet[1]][-1] == "错误原因"
    assert sheet["A2"].value == "91330424MA28AQAQX0"
    refused = [
        (
            ["import", "targets", str(targets), "--rejects", "r.txt", "--db", db],
            "须以 .csv（CSV 表格）或 .xlsx（Excel 工作簿）结尾：r.txt",
        ),
        (["template", "items", "-o", str(tmp_path / "items.csv")], "例如 items.xlsx"),
        (["template", "task", "-o", str(tmp_path / "任务.txt")], "须以 .toml（TOML 文本）结尾"),
        (["report", "year", "-o", str(tmp_path / "r.txt"), "--db", db], "须以 .xlsx"),
        (["draw", "export-pool", "D1", "-o", str(tmp_path / "p.xlsx"), "--db", db], "须以 .csv"),
    ]
    for argv, says in refused:
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and says in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["c.sqlite3", targets.name, rejects.name]
    )


def test_rejects_naming_the_imported_file_is_refused_and_the_file_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--rejects` is rewritten on every run (force): naming the file being imported replaced
    the county's list with its refused rows alone."""
    db = str(tmp_path / "c.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    targets = tmp_path / "检查对象.csv"
    text = "统一社会信用代码,名称\n91330424MA28AQAQX0,错误代码餐饮店\n"
    targets.write_text(text, "utf-8")
    for same in (str(targets), str(tmp_path / "." / "检查对象.csv")):
        argv = ["import", "targets", str(targets), "--skip-invalid", "--rejects", same]
        code, _, err = run_cli([*argv, "--db", db], capsys)
        assert code == 2 and "正是要导入的文件" in err, err
        assert targets.read_text("utf-8") == text


def test_unknown_task_file_keys_are_named_with_their_line_and_the_nearest_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo (`windows = …`) was ignored without a word, and a key appended after
    [[rule.strata]] went into the stratum, so the file was said to lack it."""
    db = str(tmp_path / "c.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    task = tmp_path / "task.toml"
    task.write_text(
        TASK_TOML
        + 'windows = ["2026-12-01", "2027-03-31"]\n[scope]\nindustry = ["餐饮服务"]\n'
        + '[[rule.strata]]\nname = "全部"\nratio = "0.03"\nrouding = "up"\n'
        + 'unplanned_reason = "上级部署专项检查"\n',
        "utf-8",
    )
    code, _, err = run_cli(["task", "create", str(task), "--db", db], capsys)
    assert code == 2
    assert "第 4 行“windows”不是任务文件的项，是不是“window”？" in err
    assert "第 6 行“industry”不是[scope] 小节的项，是不是“industries”？" in err
    assert "第 10 行“rouding”不是[[rule.strata]] 分层的项，是不是“rounding”？" in err
    assert "第 11 行“unplanned_reason”不是[[rule.strata]] 分层的项：写在 [[rule.strata]]" in err


def test_template_and_import_help_say_what_the_operator_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`template -o nodir/items.xlsx` told to import `items.xlsx` (the folder dropped); there
    was no `template conflicts`; `holidays load --help` did not describe the file and
    `--show-errors` had no help."""
    target = tmp_path / "dir" / "items.xlsx"
    target.parent.mkdir()
    code, out, _ = run_cli(["template", "items", "-o", str(target)], capsys)
    assert code == 0 and f"lianjian import items {target} 导入" in out
    code, out, _ = run_cli(["template", "conflicts", "-o", str(tmp_path / "利害关系.xlsx")], capsys)
    assert code == 0 and "lianjian import conflicts" in out
    assert run_cli(["holidays", "load", "--help"], capsys)[1].count("2027") >= 3
    assert "最多列出多少条错误" in run_cli(["import", "--help"], capsys)[1]


@pytest.mark.parametrize(
    "given",
    [
        "lj.sqlite3?mode=ro",
        "sqlite:///{d}/lj.sqlite3?mode=ro&uri=true",
        "sqlite:///{d}/lj.sqlite3?mode=ro",
    ],
)
def test_sqlite_query_options_are_refused_naming_the_setting_and_create_nothing(
    given: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lj.sqlite3?mode=ro` (or an SQLite URL with URI options) created a file named
    literally `lj.sqlite3?mode=ro` beside the database, or ignored the option with an English
    warning. Lianjian reads and writes its database: such options are refused, in Chinese,
    naming the setting, and no file is created."""
    monkeypatch.chdir(tmp_path)
    assert run_cli(["db", "upgrade", "--db", str(tmp_path / "lj.sqlite3")], capsys)[0] == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv in (["setup", "check"], ["audit", "verify"], ["db", "upgrade"]):
        code, _, err = run_cli([*argv, "--db", given.format(d=tmp_path)], capsys)
        assert code == 2 and "mode=ro" in err and "database_url 或 --db" in err, err
        assert not re.search(r"[A-Za-z]{4,} [a-z]{3,} [a-z]{3,}", err), err  # no English
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_validation_error_no_command_caught_is_told_in_chinese_without_its_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last resort for pydantic's ValidationError printed its English `msg` ("Input
    should be a valid integer…") under "配置有误 / invalid settings"; it now says each
    place's problem as the config file's errors do (core/validation_zh), and never the input
    (it may be a secret)."""
    from pydantic import BaseModel

    import bot.cli as cli

    class Section(BaseModel):
        port: int
        secret: int

    def broken(_args: object) -> int:
        Section.model_validate({"port": "八千", "secret": "s3cr3t-key"})
        return 0

    monkeypatch.setattr(cli, "cmd_summary", broken)
    code, _, err = run_cli(["summary"], capsys)
    assert code == 2, err
    assert "port：应为整数" in err and "secret：应为整数" in err, err
    assert "invalid" not in err and "Input should" not in err and "s3cr3t" not in err, err


def test_setup_check_on_a_fresh_config_creates_nothing_and_names_the_upgrade_as_readme_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A check only looks: on a configuration whose database does not exist yet it creates no
    file and names the command that does, with the same --config; README's "Going live" step 1
    says so (it said any command migrates first, so the operator skipped db upgrade)."""
    db = tmp_path / "county.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(f'database_url = "{db.as_posix()}"\n', "utf-8")
    code, _, err = run_cli(["setup", "check", "--config", str(config)], capsys)
    assert code == 2 and f"lianjian db upgrade --config {config}" in err
    assert not db.exists()
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    step = re.search(r"^1\. `lianjian db upgrade.*?(?=^2\. )", readme, re.M | re.S)
    assert step is not None and "each one migrates first" not in step.group(0)
    assert "setup check" in step.group(0) and "creates nothing" in step.group(0)

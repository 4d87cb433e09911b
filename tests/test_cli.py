"""The CLI end to end on a demo database, including the README's verification recipe."""

import asyncio
import datetime as dt
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from docx import Document
from sqlalchemy import create_engine, text

from bot.cli import main
from core.db import make_engine
from core.draws import algorithm
from core.schema import alembic_config, upgrade
from tests.dispatch_support import LONG_REASON, too_long

README = Path(__file__).resolve().parent.parent / "README.md"
# a 政务微信 deployment's configuration: its robots live under its own webhook_base
PRIVATE_WECOM = (
    '[wecom]\ncorp_id = "ww1"\nagent_id = 1\nsecret = "s"\ntoken = "t"\n'
    f'encoding_aes_key = "{"a" * 43}"\nwebhook_base = "https://zwwx.example.gov.cn"\n'
)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    assert main(["demo", "--targets", "3000", "--seed", "7", "--db", str(db)]) == 0
    return db


def example_task(tmp_path: Path, capsys, window: tuple[dt.date, dt.date] | None = None) -> Path:
    """The task file `template task` writes, with `window` when given."""
    path = tmp_path / "任务.toml"
    assert main(["template", "task", "-o", str(path), "--force"]) == 0
    capsys.readouterr()
    if window:
        dates = ", ".join(f'"{d}"' for d in window)
        task = re.sub(r"^window = .*$", f"window = [{dates}]", path.read_text("utf-8"), flags=re.M)
        path.write_text(task, "utf-8")
    return path


def test_demo_refuses_an_existing_file(demo_db, capsys):
    assert main(["demo", "--db", str(demo_db)]) == 2
    out, err = capsys.readouterr()
    assert "已存在" in err and "已存在" not in out  # errors go to stderr, the transcript to stdout


def test_outbox_list_is_in_chinese(demo_db, capsys):
    """A command's reply has no title and every row's state is stored in English: the list
    printed “sent … None” for them."""
    assert main(["outbox", "list", "--db", str(demo_db)]) == 0
    out = capsys.readouterr().out
    assert out.strip() and "None" not in out
    assert not re.search(r"\b(sent|pending|dead)\b", out), out


def test_draw_list_show_verify(demo_db, capsys):
    assert main(["draw", "list", "--json", "--db", str(demo_db)]) == 0
    draws = json.loads(capsys.readouterr().out)
    target_draw = next(d for d in draws if d["kind"] == "targets" and d["locked"])
    assert main(["draw", "show", str(target_draw["id"]), "--json", "--db", str(demo_db)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (
        shown["task_code"] == "LJ-2026-001" and len(shown["selection"]) == target_draw["selected"]
    )
    assert main(["draw", "verify", str(target_draw["id"]), "--db", str(demo_db)]) == 0
    assert "验证通过" in capsys.readouterr().out
    # by the task's code: the report names the draw it checked
    assert main(["draw", "verify", "LJ-2026-001", "--db", str(demo_db)]) == 0
    assert f"抽取编号：{target_draw['code']}（检查对象）" in capsys.readouterr().out


def test_readme_recipe_recomputes_the_draw(demo_db, tmp_path, capsys):
    """The snippet in README.md, run as written, must agree with the stored selection."""
    assert (
        main(
            [
                "draw",
                "export-pool",
                "LJ-2026-001",
                "-o",
                str(tmp_path / "pool.csv"),
                "--db",
                str(demo_db),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["draw", "show", "LJ-2026-001", "--json", "--db", str(demo_db)]) == 0
    (tmp_path / "draw.json").write_text(capsys.readouterr().out, "utf-8")
    found = re.search(r"```python\n(.*?)```", README.read_text("utf-8"), re.S)
    assert found is not None, "the README's Python example"
    snippet = found.group(1)
    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_tampered_selection_fails_verification(demo_db, tmp_path, capsys):
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    engine = create_engine(f"sqlite:///{copy}")
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE draw SET selection = '[\"91330400000000000X\"]' "
                "WHERE task_code = 'LJ-2026-001' AND kind = 'targets'"
            )
        )
    engine.dispose()
    assert main(["draw", "verify", "LJ-2026-001", "--db", str(copy)]) == 1
    assert "✗" in capsys.readouterr().out


def test_audit_verify_names_an_edited_row(demo_db, tmp_path, capsys):
    assert main(["audit", "verify", "--db", str(demo_db)]) == 0
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    engine = create_engine(f"sqlite:///{copy}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET actor = 'someone' WHERE id = 5"))
    engine.dispose()
    assert main(["audit", "verify", "--db", str(copy)]) == 1
    assert "第 5 条" in capsys.readouterr().out


def test_audit_show_reads_a_task_and_a_case_trail_in_words(demo_db, capsys):
    """全程留痕、责任可溯 (004 第四条): the office looks up who did what to a task and to one of
    its cases, by name and in words, without exporting the archive."""
    assert main(["audit", "show", "LJ-2026-001", "--db", str(demo_db)]) == 0
    out = capsys.readouterr().out
    for words in (
        "创建联合抽查任务",
        "发出邀请",
        "拒绝邀请",
        "理由：",
        "确认抽取",
        "随机匹配检查人员",
    ):
        assert words in out
    assert not re.search(r"[\u4e00-\u9fff]\s*(task|invitation|draw|inspectors)\.[a-z]", out)
    # what was decided, for whom, and on what: 通过 / 退回 (and whose part went back), the
    # receiving department, who replaced whom, and each subject in words, not `invitation:4`
    assert re.search(
        r"审核退回：退回县\S+录入的部分（案件 LJ-2026-001-003）；理由：检查记录缺少现场照片", out
    ), out
    assert "审核通过（案件 LJ-2026-001-001）" in out
    assert "登记移送：移送办案机构，接收单位 县生态环境局（案件 LJ-2026-001-002）" in out
    assert re.search(r"  更换检查人员：\S+，由\S+接替（案件 LJ-2026-001-021）", out), out
    assert re.search(r"  回避：\S+，由\S+接替（案件 LJ-2026-001-001）", out), out
    assert re.search(r"接受邀请（县\S+的邀请）", out), out
    assert "（案件 LJ-2026-001-002 的第 1 条异议）" in out
    assert not re.search(r"（(task|case|draw|invitation|objection):", out), out
    assert not re.search(r"  审核（", out)

    assert main(["audit", "show", "lj-2026-001-002", "--json", "--db", str(demo_db)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert {r["subject"] for r in rows} <= {"case:LJ-2026-001-002"} | {
        r["subject"] for r in rows if r["subject"].startswith("objection:")
    }
    assert "case.result.submitted" in {r["action"] for r in rows}

    assert main(["audit", "show", "LJ-2026-009", "--db", str(demo_db)]) == 2
    assert "未找到任务 LJ-2026-009" in capsys.readouterr().err


def test_demo_documents_show_each_items_result_and_the_day_the_notice_was_issued(
    demo_db, tmp_path, capsys
):
    """004 第十六条: the record form (一企一表) lists each item with its department's result —
    the demo's departments enter their parts as the chat's 提交 does, item by item, and a
    correction names the corrected result of every item; the notice is dated the day the group
    handed it over (已通知), not the day it is printed again."""
    with create_engine(f"sqlite:///{demo_db}").connect() as conn:
        bare = conn.execute(
            text(
                "SELECT count(*) FROM case_result r WHERE NOT EXISTS "
                "(SELECT 1 FROM item_result i WHERE i.result_id = r.id)"
            )
        ).scalar()
    assert bare == 0
    out = tmp_path / "docs"
    for code in ("LJ-2026-001-001", "LJ-2026-001-002"):  # 002: corrected after an objection
        assert main(["documents", code, "-o", str(out), "--db", str(demo_db)]) == 0
        record = Document(str(out / code / f"{code}-联合抽查情况记录表.docx"))
        [items] = [t for t in record.tables if t.rows[0].cells[0].text == "序号"]
        results = [row.cells[-1].text for row in items.rows[1:]]
        assert len(results) >= 2 and all(r == "未发现问题" for r in results), results
        notice = Document(str(out / code / f"{code}-联合抽查通知书.docx"))
        assert notice.paragraphs[-1].text == "2026年3月17日"


def test_unknown_draw_is_a_clear_error(demo_db, capsys):
    assert main(["draw", "show", "NOPE", "--db", str(demo_db)]) == 2
    assert "未找到抽取记录" in capsys.readouterr().err


def test_chat_bind_takes_a_department_by_name_and_says_what_is_wrong_with_a_robot(
    demo_db, tmp_path, capsys
):
    """The admin names the department as the importers let them (卫健, 县卫生健康局), and a
    webhook copied without its scheme or a DingTalk secret not from the 加签 setting is told
    as such."""
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    db = ["--db", str(copy)]
    ding = "https://oapi.dingtalk.com/robot/send?access_token=abc123"
    assert main(["chat", "bind", "卫健", "--platform", "dingtalk", "--webhook", ding, *db]) == 0
    assert "→ 县卫生健康局" in capsys.readouterr().out
    bare = "qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K1"
    assert main(["chat", "bind", "SJ", "--platform", "wecom", "--webhook", bare, *db]) == 2
    assert "应以 https:// 开头" in capsys.readouterr().err
    # http:// is not the address the robot settings give either: the same refusal, said first
    for plain in ("http://x", "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K1"):
        assert main(["chat", "bind", "SJ", "--platform", "wecom", "--webhook", plain, *db]) == 2
        err = capsys.readouterr().err
        assert "应以 https:// 开头" in err and "群机器人设置" in err and "不完整" not in err
    signed = [*db, "--platform", "dingtalk", "--webhook", ding, "--secret", "abc"]
    assert main(["chat", "bind", "WJ", *signed]) == 2
    assert "以 SEC 开头" in capsys.readouterr().err
    assert main(["chat", "bind", "卫", "--platform", "dingtalk", "--webhook", ding, *db]) == 2
    assert "请写部门全称、简称或代码" in capsys.readouterr().err


def test_chat_bind_replaces_and_lists_without_secrets(demo_db, tmp_path, capsys):
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRETKEY123"
    assert (
        main(["chat", "bind", "SJ", "--platform", "wecom", "--webhook", url, "--db", str(copy)])
        == 0
    )
    assert (
        main(
            ["chat", "bind", "SJ", "--platform", "wecom", "--webhook", url + "4", "--db", str(copy)]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["chat", "list", "--db", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "SECRETKEY" not in out and "已被新的绑定替换" in out and out.count("启用") == 1
    assert (
        main(["chat", "bind", "NOPE", "--platform", "wecom", "--webhook", url, "--db", str(copy)])
        == 2
    )
    assert (
        main(
            [
                "chat",
                "bind",
                "SJ",
                "--platform",
                "wecom",
                "--webhook",
                "https://x/",
                "--db",
                str(copy),
            ]
        )
        == 2
    )
    assert "不完整" in capsys.readouterr().err


def test_chat_bind_refuses_another_platforms_robot_and_keeps_the_binding(demo_db, tmp_path, capsys):
    """A DingTalk robot address bound as WeCom (or the other way round) replaced the working
    binding and sent the department's messages to the wrong endpoint: it is refused, naming
    the host the platform's robots live on and where to copy the address, and nothing is
    replaced."""
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    db = ["--db", str(copy)]
    wecom = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=GOODKEY"
    ding = "https://oapi.dingtalk.com/robot/send?access_token=abc"
    assert main(["chat", "bind", "SJ", "--platform", "wecom", "--webhook", wecom, *db]) == 0
    assert main(["chat", "bind", "SJ", "--platform", "dingtalk", "--webhook", ding, *db]) == 0
    capsys.readouterr()
    assert main(["chat", "bind", "SJ", "--platform", "wecom", "--webhook", ding, *db]) == 2
    err = capsys.readouterr().err
    assert "https://qyapi.weixin.qq.com" in err and "企业微信" in err and "复制" in err
    assert main(["chat", "bind", "SJ", "--platform", "dingtalk", "--webhook", wecom, *db]) == 2
    err = capsys.readouterr().err
    assert "https://oapi.dingtalk.com" in err and "钉钉" in err and "复制" in err
    # the right host with the other platform's credential is not a robot address either
    wrong_key = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?access_token=abc"
    assert main(["chat", "bind", "SJ", "--platform", "wecom", "--webhook", wrong_key, *db]) == 2
    assert "key" in capsys.readouterr().err
    assert main(["chat", "list", *db]) == 0
    out = capsys.readouterr().out
    assert "已被新的绑定替换" not in out and out.count("启用") == 2


def test_chat_bind_checks_against_the_configured_private_host(demo_db, tmp_path, capsys):
    """政务微信 and other private deployments set [wecom] webhook_base (docs/platforms.md
    "Government editions"): their robot addresses are taken, the public host's are not, as
    the sender would refuse them."""
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    config = tmp_path / "config.toml"
    config.write_text(
        PRIVATE_WECOM,
        "utf-8",
    )
    db = ["--db", str(copy), "--config", str(config)]
    private = "https://zwwx.example.gov.cn/cgi-bin/webhook/send?key=K"
    public = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K"
    assert main(["chat", "bind", "SJ", "--platform", "wecom", "--webhook", private, *db]) == 0
    capsys.readouterr()
    assert main(["chat", "bind", "SJ", "--platform", "wecom", "--webhook", public, *db]) == 2
    assert "https://zwwx.example.gov.cn" in capsys.readouterr().err


def test_task_create_from_the_example_file_opens_consultation(demo_db, tmp_path, capsys):
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    example = example_task(tmp_path, capsys)
    assert main(["task", "create", str(example), "--db", str(copy)]) == 0
    out = capsys.readouterr().out
    invited = re.search(r"已向 (\S+) 发出邀请", out)
    assert "LJ-2026-002" in out and invited is not None
    assert set(invited.group(1).split("、")) == {
        "县卫生健康局",
        "县公安局",
        "县交通运输局",
        "县生态环境局",
    }
    engine = create_engine(f"sqlite:///{copy}")
    with engine.connect() as conn:
        state = conn.execute(
            text("SELECT state FROM joint_task WHERE code = 'LJ-2026-002'")
        ).scalar()
        invited = conn.execute(
            text(
                "SELECT count(*) FROM invitation i JOIN joint_task t ON t.id = i.task_id "
                "WHERE t.code = 'LJ-2026-002'"
            )
        ).scalar()
    engine.dispose()
    assert (state, invited) == ("consulting", 4)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        example.read_text("utf-8").replace('items = ["SJ-03"]', 'items = ["NOPE"]'), "utf-8"
    )
    assert main(["task", "create", str(bad), "--db", str(copy)]) == 2
    assert "事项清单中没有：NOPE" in capsys.readouterr().err


def test_task_create_refuses_a_window_that_has_ended_and_sends_nothing(demo_db, tmp_path, capsys):
    """000 §五.3: the window is when the groups inspect; one that has ended invites nobody."""
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    ended = example_task(tmp_path, capsys, (dt.date(2025, 1, 1), dt.date(2025, 2, 1)))
    assert main(["task", "create", str(ended), "--db", str(copy)]) == 2
    assert "检查时间窗口已于 2025年2月1日 结束（今天是 " in capsys.readouterr().err
    engine = create_engine(f"sqlite:///{copy}")
    with engine.connect() as conn:
        tasks = conn.execute(text("SELECT count(*) FROM joint_task")).scalar()
        outbox = conn.execute(text("SELECT count(*) FROM outbox")).scalar()
    engine.dispose()
    original = create_engine(f"sqlite:///{demo_db}")
    with original.connect() as conn:
        assert (tasks, outbox) == (
            conn.execute(text("SELECT count(*) FROM joint_task")).scalar(),
            conn.execute(text("SELECT count(*) FROM outbox")).scalar(),
        )
    original.dispose()


@pytest.mark.parametrize(
    ("change", "told"),
    [
        (
            ("window = [", 'window = ["2026-12-20", "2026-02-30"]\n# ['),
            "window 第 2 项：应为实际存在的日期，格式 YYYY-MM-DD（现为“2026-02-30”），"
            '例如 window = ["2026-03-16", "2026-04-30"]',
        ),
        (
            ('ratio = "0.05"', 'ratio = "3%"'),
            "第 2 个分层（[[rule.strata]]）的 ratio：应为小数（如 0.05，不带 %）（现为“3%”），"
            '例如 ratio = "0.05"',
        ),
        (
            ('lead = "SJ"', 'lead = "XX"'),
            "任务文件的 lead：找不到部门“XX”，请写部门全称、简称或代码",
        ),
        (
            ('items = ["SJ-03"]', 'items = ["SJ-99"]'),
            "牵头部门的事项清单中没有：SJ-99（该部门的事项代码用 lianjian item list SJ 查看）",
        ),
    ],
)
def test_task_file_errors_say_what_to_write_and_where_to_look(
    demo_db, tmp_path, capsys, change, told
):
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    example = example_task(tmp_path, capsys)
    old, new = change
    example.write_text(example.read_text("utf-8").replace(old, new, 1), "utf-8")
    assert main(["task", "create", str(example), "--db", str(copy)]) == 2
    err = capsys.readouterr().err
    assert told in err and "Input should" not in err


def test_department_and_item_lists_give_the_codes_a_task_file_names(demo_db, capsys):
    assert main(["department", "list", "--db", str(demo_db)]) == 0
    assert re.search(r"^SJ\t县市场监督管理局", capsys.readouterr().out, re.M)
    assert main(["item", "list", "sj", "--db", str(demo_db)]) == 0
    assert re.search(r"^SJ-03\t(重点|一般)\t", capsys.readouterr().out, re.M)
    assert main(["item", "list", "XX", "--db", str(demo_db)]) == 2
    assert "找不到部门“XX”" in (err := capsys.readouterr().err)
    assert "（部门列表用 lianjian department list 查看）" in err


def test_the_example_task_samples_higher_risk_at_higher_ratios(demo_db, tmp_path, capsys):
    """001 第十四条 (对高风险检查对象加大抽查比例), 004 第八条: the task the example file creates
    takes A 低风险 < B 一般风险 < C 较高风险 < D 高风险; unclassified goes with B."""
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    example = example_task(tmp_path, capsys)
    assert main(["task", "create", str(example), "--db", str(copy)]) == 0
    engine = create_engine(f"sqlite:///{copy}")
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT rule FROM joint_task WHERE code = 'LJ-2026-002'")
        ).scalar_one()
    engine.dispose()
    rule = algorithm.parse_rule(json.loads(stored))
    ratios = {s.name: s.ratio for s in rule.strata}
    a, b, c, d, unclassified = (
        ratios.get(rule.stratum_of(r, []) or "") or 0 for r in ("A", "B", "C", "D", "")
    )
    assert a < b < c < d and unclassified == b


@pytest.mark.parametrize("command", [["serve"], ["audit", "verify"]])
def test_invalid_settings_are_reported_without_the_secrets(tmp_path, capsys, monkeypatch, command):
    """pydantic's default text repeats each input: a mistyped AES key or a short link secret
    must name the setting, never print the value."""
    monkeypatch.delenv("LIANJIAN_LINK_SECRET", raising=False)
    bad_aes = "AESKEY" + "q" * 36  # 42 characters: one short of a valid EncodingAESKey
    short_secret = "linksecret-Zz9"
    config = tmp_path / "config.toml"
    config.write_text(
        f'link_secret = "{short_secret}"\n[wecom]\ncorp_id = "ww1"\nagent_id = 1\n'
        f'secret = "appsecret-Q7"\ntoken = "tok"\nencoding_aes_key = "{bad_aes}"\n',
        "utf-8",
    )
    assert main([*command, "--config", str(config)]) == 2
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert "[wecom]：encoding_aes_key 应为 43 个字符" in shown
    assert "link_secret" in shown and "至少需要 32 个字符" in shown
    for secret in (bad_aes, short_secret, "appsecret-Q7", "AESKEY", "linksecret"):
        assert secret not in shown


async def test_demo_reports_each_stage_in_order_and_keeps_its_transcript(tmp_path) -> None:
    """The CLI's progress bar follows these stage reports; the transcript lines stay the output."""
    from core.demo import STAGES, run_demo

    lines: list[str] = []
    stages: list[str] = []
    assert (
        await run_demo(
            db=str(tmp_path / "d.sqlite3"),
            seed=5,
            targets=2000,
            out=lines.append,
            stage=stages.append,
        )
        == 0
    )
    assert stages == list(STAGES)
    assert lines[0].startswith("生成模拟县域") and "演示完成" in lines[-1]


async def test_demo_exercises_objection_referral_and_replacement_as_chat_does(tmp_path) -> None:
    """Issue 8: the demo walks the steps officers reach by chat through the services the chat
    handlers call — 异议/复查/更正/答复 (004 第二十条), 移送 to a department outside the task and
    its 签收 (001 第十七条, 004 第二十一条), 更换 approved by the department's leader (001
    第十四条, 004 第十三条) — and the audit log records each as chat would."""
    from sqlalchemy import select

    from core.db import make_engine, make_sessionmaker
    from core.demo import run_demo
    from core.models import AuditEvent, Department, Referral

    path = tmp_path / "d.sqlite3"
    lines: list[str] = []
    assert await run_demo(db=str(path), seed=7, targets=2000, out=lines.append) == 0
    engine = make_engine(str(path))
    try:
        async with make_sessionmaker(engine)() as s:
            events = list(await s.scalars(select(AuditEvent).order_by(AuditEvent.id)))
            actions = [e.action for e in events]
            referral = await s.scalar(select(Referral))
            assert referral is not None and referral.acknowledged_at is not None
            receiver = await s.get(Department, referral.to_department_id)
    finally:
        await engine.dispose()
    for done in (
        "objection.filed",
        "objection.rechecked",
        "case.result.corrected",
        "objection.replied",
        "case.referral",
        "referral.acknowledged",
        "case.replacement.requested",
        "case.replacement.approved",
    ):
        assert actions.count(done) == 1, done
    assert actions.index("case.replacement.requested") < actions.index("case.replacement.approved")
    assert actions.index("case.referral") < actions.index("referral.acknowledged")
    assert receiver is not None and receiver.code == "HB"  # outside the task: it declined
    signer = next(e for e in events if e.action == "referral.acknowledged").actor
    assert signer == "HB001"
    assert any("签收" in line for line in lines) and any("更换" in line for line in lines)


def test_demo_without_a_terminal_prints_no_progress_bar(tmp_path) -> None:
    """Piped (CI logs, `| tail`): transcript lines only, no bar redraws or escape codes."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "demo",
            "--targets",
            "2000",
            "--db",
            str(tmp_path / "d.sqlite3"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 and "演示完成" in done.stdout
    assert "\x1b[" not in done.stdout and "演示：" not in done.stdout


async def _move_demo_clock(db: Path, days: int) -> dt.date:
    """What the simulator's 快进 does to a `serve --demo` database: the audited move that the
    demo clock's offset is read back from (core.demo_clock)."""
    from core.changes import Ctx
    from core.clock import SystemClock
    from core.db import make_engine, make_sessionmaker
    from core.demo_clock import DemoClock, record_advance

    clock = DemoClock(SystemClock())
    engine = make_engine(str(db))
    try:
        async with make_sessionmaker(engine)() as session:
            ctx = Ctx(session=session, clock=clock, actor_label="demo:simulator")
            to = clock.now() + dt.timedelta(days=days)
            await record_advance(ctx, clock, to, f"快进 {days} 天")
            await session.commit()
    finally:
        await engine.dispose()
    clock.move_to(to)
    return clock.today()


def test_cli_on_a_moved_demo_clock_uses_the_demo_day_and_says_so(demo_db, tmp_path, capsys):
    """A tester's `task create` on a `serve --demo` database set the reply deadline from the
    real day, so 接受 was refused as late at the demo's day: the CLI follows the demo clock
    (told in one line), and a database with no demo clock keeps real time."""
    plain = tmp_path / "plain.sqlite3"
    plain.write_bytes(demo_db.read_bytes())
    moved = tmp_path / "moved.sqlite3"
    moved.write_bytes(demo_db.read_bytes())
    demo_day = asyncio.run(_move_demo_clock(moved, 155))
    example = example_task(tmp_path, capsys, (demo_day, demo_day + dt.timedelta(days=30)))
    assert main(["task", "create", str(example), "--db", str(moved)]) == 0
    _, err = capsys.readouterr()
    assert f"演示时钟：{demo_day.year}年{demo_day.month}月{demo_day.day}日" in err
    assert main(["task", "create", str(example), "--db", str(plain)]) == 0
    assert "演示时钟" not in capsys.readouterr().err
    due = {}
    for db in (moved, plain):
        engine = create_engine(f"sqlite:///{db}")
        with engine.connect() as conn:
            due[db] = dt.date.fromisoformat(
                conn.execute(
                    text("SELECT reply_due_on FROM joint_task ORDER BY id DESC LIMIT 1")
                ).scalar_one()
            )
        engine.dispose()
    assert due[moved] > demo_day  # the reply is due after the demo's day, not long before it
    assert due[plain] < demo_day
    window = (demo_day - dt.timedelta(days=40), demo_day - dt.timedelta(days=1))
    ended = example_task(tmp_path, capsys, window)
    assert main(["task", "create", str(ended), "--db", str(moved)]) == 2  # ended at the demo's day
    assert "检查时间窗口已于" in capsys.readouterr().err


def test_export_takes_a_department_by_its_former_name_and_lists_what_a_vague_word_fits(
    demo_db, tmp_path, capsys
):
    """环保 is everyday speech for 县生态环境局; 县 fits every department, so the operator is
    shown them to choose from rather than told there is no such department."""
    out = tmp_path / "r.xlsx"
    argv = ["export", "results", "--year", "2026", "-o", str(out), "--force", "--db", str(demo_db)]
    assert main([*argv, "--department", "环保"]) == 0
    assert main([*argv, "--department", "县"]) == 2
    err = capsys.readouterr().err
    assert "“县”可以指县市场监督管理局、" in err and "县生态环境局" in err
    assert "找不到部门" not in err


def test_item_list_takes_a_department_as_export_does(demo_db, tmp_path, capsys):
    """`item list 环保` said 未找到部门 while `export results --department 环保` took it: every
    command that names a department reads it as core.department_names does."""
    assert main(["item", "list", "HB", "--db", str(demo_db)]) == 0
    by_code = capsys.readouterr().out
    for word in ("环保", "生态环境局", "县生态环境局"):
        assert main(["item", "list", word, "--db", str(demo_db)]) == 0, word
        assert capsys.readouterr().out == by_code
    assert main(["item", "list", "县", "--db", str(demo_db)]) == 2
    assert "“县”可以指" in capsys.readouterr().err
    out = tmp_path / "r.xlsx"
    argv = ["export", "results", "--year", "2026", "-o", str(out), "--db", str(demo_db)]
    assert main([*argv, "--department", "环保"]) == 0
    assert "县生态环境局：已导出 2026 年已公示检查结果" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "key"), [('invite = ["WJ", "ZZ"]', "invite"), ('lead = "ZZ"', "lead")]
)
def test_task_file_unknown_department_says_whether_lead_or_invite(
    demo_db, tmp_path, capsys, line, key
):
    path = example_task(tmp_path, capsys)
    text = re.sub(rf"^{key} = .*$", line, path.read_text("utf-8"), flags=re.M)
    path.write_text(text, "utf-8")
    assert main(["task", "create", str(path), "--db", str(demo_db)]) == 2
    err = capsys.readouterr().err
    assert f"任务文件的 {key}" in err and "“ZZ”" in err, err


def test_archive_of_an_unfinished_task_lists_the_cases_not_yet_published(demo_db, tmp_path, capsys):
    """The refusal named no case: the lead could not tell which results were missing."""
    db = tmp_path / "unfinished.sqlite3"
    shutil.copy(demo_db, db)
    with closing(sqlite3.connect(db)) as con:
        con.execute("UPDATE joint_task SET state = 'inspecting'")
        con.execute("UPDATE inspection_case SET state = 'assigned'")
        con.execute(
            "UPDATE inspection_case SET state = 'submitted' WHERE id = (SELECT max(id) FROM"
            " inspection_case)"
        )
        con.commit()
        codes = [c for (c,) in con.execute("SELECT code FROM inspection_case ORDER BY code")]
    argv = ["export", "archive", "LJ-2026-001", "-o", str(tmp_path / "a.zip"), "--db", str(db)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{codes[0]} " in err and "（待检查）" in err, err
    assert f"等 {len(codes)} 户" in err and codes[20] not in err
    assert "公示后再立卷归档" in err


async def _send_newest_outbox_row(db: Path) -> None:
    """What the sender does with the newest message once the platform accepts it: claim it,
    then mark it sent."""
    from core import outbox
    from core.db import make_engine, make_sessionmaker

    engine = make_engine(str(db))
    now = dt.datetime.now(dt.UTC)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await outbox.claim_due(session, 2000, now, dt.timedelta(minutes=1))
            await session.commit()
            newest = max(rows, key=lambda row: row.id)
            assert newest.claimed_until is not None
            assert await outbox.mark_sent(
                session, newest.id, newest.claimed_until, now=now, channel="wecom"
            )
            await session.commit()
    finally:
        await engine.dispose()


def test_outbox_list_names_recipients_and_counts_the_attempts_a_sent_message_took(
    demo_db, tmp_path, capsys
):
    """Recipients showed as officer:12 / department:1, and a sent message as 尝试 0."""
    db = tmp_path / "sent.sqlite3"
    shutil.copy(demo_db, db)
    asyncio.run(_send_newest_outbox_row(db))
    assert main(["outbox", "list", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"(officer|department):\d", out), out
    assert re.search(r"县\w+局（[A-Z]+）", out), out
    sent = [line for line in out.splitlines() if "已发送" in line]
    assert sent and all("发送 1 次" in line for line in sent), out
    assert "尝试 0" not in out


def test_documents_of_a_task_not_yet_drawn_say_so_and_make_no_folder(demo_db, tmp_path, capsys):
    """A task before its draw has no cases: no "0 户 0 份" success, no empty folder."""
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    assert main(["task", "create", str(example_task(tmp_path, capsys)), "--db", str(copy)]) == 0
    capsys.readouterr()
    out = tmp_path / "docs0"
    assert main(["documents", "LJ-2026-002", "-o", str(out), "--db", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "LJ-2026-002 尚未抽取检查对象" in err and "0 份" not in err
    assert not out.exists()


def test_documents_of_a_withdrawn_task_say_it_was_withdrawn(demo_db, tmp_path, capsys):
    """A withdrawn task is never drawn: not "确认抽取后再生成", but withdrawn, no documents."""
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    db = ["--db", str(copy)]
    assert main(["task", "create", str(example_task(tmp_path, capsys)), *db]) == 0
    reason = "任务文件重复执行，与前一任务重复"
    assert main(["task", "withdraw", "LJ-2026-002", "--reason", reason, *db]) == 0
    capsys.readouterr()
    assert main(["documents", "LJ-2026-002", "-o", str(tmp_path / "docs"), *db]) == 2
    err = capsys.readouterr().err
    assert "LJ-2026-002 已撤销" in err and "没有检查文书" in err
    assert "确认抽取后再生成" not in err and "尚未抽取" not in err


def test_task_file_run_twice_is_refused_and_withdraw_from_the_cli(demo_db, tmp_path, capsys):
    """The operator's LJ-2027-004/-005/-006: the same file run again created the task again."""
    db = tmp_path / "copy.sqlite3"
    db.write_bytes(demo_db.read_bytes())
    example = example_task(tmp_path, capsys)
    assert main(["task", "create", str(example), "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["task", "create", str(example), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "已有同一任务 LJ-2026-002" in err and "--again" in err
    assert main(["task", "create", str(example), "--again", "--db", str(db)]) == 0
    assert "LJ-2026-003" in capsys.readouterr().out
    withdraw = ["task", "withdraw", "LJ-2026-003", "--db", str(db), "--reason"]
    assert main([*withdraw, "重复创建"]) == 2  # a written reason, the example in CLI syntax
    err = capsys.readouterr().err
    assert "至少需要 10 个字" in err and "lianjian task withdraw LJ-2026-003 --reason" in err
    assert main([*withdraw, LONG_REASON]) == 2  # the written reason's limit, as the chat's
    assert too_long("撤销理由") in capsys.readouterr().err
    assert main([*withdraw, "任务文件重复执行，与 LJ-2026-002 重复"]) == 0
    out = capsys.readouterr().out
    # the chat's reply, as plain text: the title, 不再检查, who was told
    assert "已撤销联合抽查任务 LJ-2026-003（" in out and "不再抽取、不再检查" in out
    assert "已通知受邀部门" in out and "**" not in out
    assert main([*withdraw, "再撤：重复创建的任务"]) == 2
    assert "已撤销" in capsys.readouterr().err


def test_an_unplanned_reason_over_2000_characters_is_refused_creating_nothing_003(
    demo_db, tmp_path, capsys
):
    """003 三(七)1: the task file's unplanned_reason is a written reason with its limit: a
    longer one is refused saying what to do, and no task is created."""
    db = tmp_path / "copy.sqlite3"
    db.write_bytes(demo_db.read_bytes())
    example = example_task(tmp_path, capsys)
    text = re.sub(
        r"^# unplanned_reason = .*$",
        f'unplanned_reason = "{LONG_REASON}"',
        example.read_text("utf-8"),
        flags=re.M,
    )
    example.write_text(text, "utf-8")
    with closing(sqlite3.connect(db)) as conn:
        before = conn.execute("select count(*) from joint_task").fetchone()
    assert main(["task", "create", str(example), "--db", str(db)]) == 2
    assert too_long("计划外任务的理由（unplanned_reason）") in capsys.readouterr().err
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("select count(*) from joint_task").fetchone() == before


def test_a_draft_task_file_run_again_inviting_opens_that_drafts_consultation(
    demo_db, tmp_path, capsys
):
    """The template's `invite = []` makes a draft; the same file run again with the invitees
    was refused as a repeat, and nothing could open the draft's consultation. A ratio written
    "0.1" instead of "0.10" is the same rule, not a second task."""
    db = tmp_path / "copy.sqlite3"
    db.write_bytes(demo_db.read_bytes())
    inviting = example_task(tmp_path, capsys)
    text = inviting.read_text("utf-8")
    draft = tmp_path / "草稿.toml"
    draft.write_text(re.sub(r"^invite = .*$", "invite = []", text, flags=re.M), "utf-8")
    assert main(["task", "create", str(draft), "--db", str(db)]) == 0
    assert "LJ-2026-002" in capsys.readouterr().out
    inviting.write_text(text.replace('ratio = "0.10"', 'ratio = "0.1"'), "utf-8")
    assert main(["task", "create", str(inviting), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "LJ-2026-002" in out and "LJ-2026-003" not in out
    with sqlite3.connect(db) as conn:
        (state,) = conn.execute(
            "SELECT state FROM joint_task WHERE code = 'LJ-2026-002'"
        ).fetchone()
        invited = conn.execute(
            "SELECT count(*) FROM invitation i JOIN joint_task t ON t.id = i.task_id"
            " WHERE t.code = 'LJ-2026-002'"
        ).fetchone()[0]
    assert (state, invited) == ("consulting", 4)
    assert main(["task", "create", str(inviting), "--db", str(db)]) == 2  # now a repeat
    assert "已有同一任务 LJ-2026-002" in capsys.readouterr().err


def test_chat_bind_with_db_reads_no_config_toml_in_the_working_directory(
    demo_db, tmp_path, capsys, monkeypatch
):
    """--db names the database, as for every other command: a ./config.toml left in the
    working directory (another deployment's, or one with a mistake) neither refused the binding
    with its errors nor made its private robot host the one addresses were checked against.
    Without --config the platforms' public hosts are checked, and a refused private address
    says to give the serving configuration with --config."""
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    here = tmp_path / "elsewhere"
    here.mkdir()
    monkeypatch.chdir(here)
    db = ["--db", str(copy)]
    public = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K"
    private = "https://zwwx.example.gov.cn/cgi-bin/webhook/send?key=K"
    for unrelated in (PRIVATE_WECOM, "[wecom]\nwebhok_base = 1\n"):
        (here / "config.toml").write_text(unrelated, "utf-8")
        assert main(["chat", "bind", "SJ", "--platform", "wecom", "--webhook", public, *db]) == 0
        assert "已绑定群机器人" in capsys.readouterr().out
    assert main(["chat", "bind", "SJ", "--platform", "wecom", "--webhook", private, *db]) == 2
    err = capsys.readouterr().err
    assert "https://qyapi.weixin.qq.com" in err and "--config" in err, err
    assert "Traceback" not in err
    (here / "config.toml").write_text(PRIVATE_WECOM, "utf-8")
    config = ["--config", str(here / "config.toml")]
    assert (
        main(["chat", "bind", "SJ", "--platform", "wecom", "--webhook", private, *db, *config]) == 0
    )


def test_setup_check_lists_each_stored_robot_binding_chat_bind_would_now_refuse(
    demo_db, tmp_path, capsys, monkeypatch
):
    """Bindings stored before `chat bind` checked the address (plain http, another host, a
    DingTalk secret not from 加签) passed setup check, and the department's messages then went
    nowhere: each enabled one is listed with what is wrong and the command that re-binds it;
    a good binding and a replaced one are not."""
    monkeypatch.chdir(tmp_path)  # no stray ./config.toml
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(demo_db.read_bytes())
    with closing(sqlite3.connect(copy)) as con, con:
        ids = dict(con.execute("SELECT code, id FROM department").fetchall())
        rows = [
            (ids["WJ"], 0, "wecom", "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K", "", 1),
            (ids["GA"], 0, "dingtalk", "https://ding.example.com/robot/send?access_token=T", "", 1),
            (None, 1, "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=T", "abc", 1),
            (ids["JT"], 0, "wecom", "http://old.example.com/send?key=K", "", 0),
            (
                ids["SJ"],
                0,
                "wecom",
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K",
                "",
                1,
            ),
        ]
        con.executemany(
            "INSERT INTO chat_binding (department_id, is_office, platform, webhook_url,"
            " sign_secret, chat_id, enabled, disabled_reason) VALUES (?, ?, ?, ?, ?, '', ?, '')",
            rows,
        )
    assert main(["setup", "check", "--db", str(copy)]) == 1
    out = capsys.readouterr().out
    robots = [line for line in out.splitlines() if "群机器人 #" in line]
    assert len(robots) == 3, out
    wj, ga, office = robots
    assert wj.startswith("- 县卫生健康局（WJ）的企业微信群机器人 #") and "https:// 开头" in wj
    assert wj.endswith(
        "请重新绑定：lianjian chat bind WJ --platform wecom --webhook 群机器人设置中的地址"
        f" --db {copy}"
    )
    assert "https://oapi.dingtalk.com/robot/send?access_token=…" in ga and "chat bind GA" in ga
    assert office.startswith("- 联席会议办公室群的钉钉群机器人 #") and "SEC 开头" in office
    assert "chat bind office --platform dingtalk" in office
    assert "old.example.com" not in out and "key=K" not in out  # replaced; no secret shown
    # the serving configuration's host (read from ./config.toml): the line re-binding SJ's
    # public robot reads it too, and does what it says
    (tmp_path / "config.toml").write_text(
        PRIVATE_WECOM,
        "utf-8",
    )
    assert main(["setup", "check", "--db", str(copy)]) == 1
    out = capsys.readouterr().out
    sj = next(line for line in out.splitlines() if line.startswith("- 县市场监督管理局（SJ）的"))
    assert "应为 https://zwwx.example.gov.cn/cgi-bin/webhook/send?key=…" in sj, sj
    again = sj.split("请重新绑定：lianjian ")[1].split()
    assert again[-4:] == ["--db", str(copy), "--config", "config.toml"], sj
    private = "https://zwwx.example.gov.cn/cgi-bin/webhook/send?key=K"
    assert main([private if word == "群机器人设置中的地址" else word for word in again]) == 0
    assert main(["setup", "check", "--db", str(copy), "--config", "config.toml"]) == 1
    assert "县市场监督管理局（SJ）的" not in capsys.readouterr().out


@pytest.mark.parametrize("where", ["missing-folder", "proc"])
def test_backup_to_a_place_it_cannot_write_is_one_chinese_line(tmp_path, capsys, where):
    """`db backup /nonexist/bk.sqlite3` (or /proc/bk.sqlite3) ended in sqlite3's
    “unable to open database file” traceback."""
    db = tmp_path / "lianjian.sqlite3"
    assert main(["db", "upgrade", "--db", str(db)]) == 0
    capsys.readouterr()
    out = (
        tmp_path / "nonexist" / "bk.sqlite3"
        if where == "missing-folder"
        else Path("/proc/bk.sqlite3")
    )
    assert main(["db", "backup", str(out), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("错误：") and str(out.parent) in err and "Traceback" not in err, err
    if where == "missing-folder":
        assert "文件夹不存在" in err and not out.parent.exists()


def test_db_upgrade_of_a_new_file_says_it_was_created(tmp_path, capsys):
    """It said “数据库已升级到最新版本” for a file it had just made."""
    db = tmp_path / "new.sqlite3"
    assert main(["db", "upgrade", "--db", str(db)]) == 0
    assert "已新建数据库" in capsys.readouterr().out
    assert main(["db", "upgrade", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "数据库已是最新版本，无需升级" in out and "新建" not in out and "已升级" not in out
    scripts = ScriptDirectory.from_config(alembic_config())
    head = scripts.get_revision(str(scripts.get_current_head()))
    older = tmp_path / "older.sqlite3"
    asyncio.run(_upgrade_to(f"sqlite+aiosqlite:///{older}", str(head.down_revision)))
    assert main(["db", "upgrade", "--db", str(older)]) == 0
    assert "数据库已升级到最新版本" in capsys.readouterr().out


async def _upgrade_to(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade(engine, revision)
    finally:
        await engine.dispose()


def test_planned_task_file_refuses_the_keys_its_plan_row_decides(demo_db, tmp_path, capsys):
    """003 三(七): a planned task is the plan row's; `window`, `invite`, `items`, `title` and a
    `[[rule.strata]]` next to `plan` were silently dropped, the task taking the row's."""
    path = tmp_path / "tp4.toml"
    path.write_text(
        'plan = "JH-2026-01"\nwindow = ["2026-12-10", "2026-12-20"]\ntitle = "改个名字"\n'
        'invite = ["WJ"]\nitems = ["SJ-02"]\n[[rule.strata]]\nname = "全部"\nratio = "0.01"\n',
        "utf-8",
    )
    assert main(["task", "create", str(path), "--db", str(demo_db)]) == 2
    err = capsys.readouterr().err
    for key in ("window", "title", "invite", "items", "rule"):
        assert f"“{key}”" in err, err
    assert "年度抽查计划" in err and "JH-2026-01" in err


def test_a_planned_task_file_names_its_plan_year_004_art7(demo_db, tmp_path, capsys):
    """004 第七条: in December the office starts next year's first row from a file; `plan`
    alone looks in this year's plan and every other key beside it is refused, so the file
    could not name the year that chat's “发起 编号 年度” can. `plan_year` does; without
    `plan` it is refused."""
    path = tmp_path / "next.toml"
    path.write_text('plan = "JH-2099-01"\nplan_year = 2099\n', "utf-8")
    assert main(["task", "create", str(path), "--db", str(demo_db)]) == 2
    err = capsys.readouterr().err
    assert "2099 年度抽查计划中没有计划编号 JH-2099-01" in err, err
    path.write_text("plan_year = 2099\n", "utf-8")
    assert main(["task", "create", str(path), "--db", str(demo_db)]) == 2
    assert "plan_year" in capsys.readouterr().err


def test_task_scope_matching_no_target_is_refused_naming_the_closest(demo_db, tmp_path, capsys):
    """t10.toml: industries 餐饮业/宾馆 and region 城关 match nothing in the library (餐饮服务,
    城关镇): the task was created and its invitations sent for a pool of none."""
    db = tmp_path / "copy.sqlite3"
    shutil.copy(demo_db, db)
    path = example_task(tmp_path, capsys)
    text = path.read_text("utf-8").replace(
        'industries = ["餐饮服务", "住宿", "食品销售"]',
        'industries = ["餐饮业", "宾馆", "住宿"]\nregions = ["城关"]',
    )
    path.write_text(text, "utf-8")
    assert main(["task", "create", str(path), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "“餐饮业”" in err and "“宾馆”" in err and "“城关”" in err, err
    assert "“住宿”" not in err  # it is in the library
    assert "城关镇" in err and "餐饮服务" in err  # the nearest the library has
    with closing(sqlite3.connect(db)) as con:
        assert con.execute("SELECT count(*) FROM joint_task").fetchone() == (1,)


def test_unknown_invited_department_is_told_before_the_repeat_check(demo_db, tmp_path, capsys):
    """t3.toml: a file inviting 教育局 (no such department there) run after the same task was made
    got “已有同一任务”, not the department it has to fix."""
    db = tmp_path / "copy.sqlite3"
    shutil.copy(demo_db, db)
    path = example_task(tmp_path, capsys)
    assert main(["task", "create", str(path), "--db", str(db)]) == 0
    text = path.read_text("utf-8").replace(
        'invite = ["WJ", "GA", "JT", "HB"]', 'invite = ["WJ", "档案局"]'
    )
    path.write_text(text, "utf-8")
    capsys.readouterr()
    assert main(["task", "create", str(path), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "“档案局”" in err and "已有同一任务" not in err, err


def test_archive_refused_for_an_open_objection_names_its_case_and_the_step_due(
    demo_db, tmp_path, capsys
):
    """004 第二十条: the refusal said only “尚有未办结的异议”; the lead had to find the case."""
    db = tmp_path / "objected.sqlite3"
    shutil.copy(demo_db, db)
    with closing(sqlite3.connect(db)) as con:
        con.execute("UPDATE joint_task SET state = 'published' WHERE code = 'LJ-2026-001'")
        con.execute(
            "UPDATE objection SET state = 'received', recheck_due_on = '2026-12-18'"
            " WHERE id = (SELECT min(id) FROM objection)"
        )
        con.commit()
        [code] = con.execute(
            "SELECT c.code FROM objection o JOIN inspection_case c ON c.id = o.case_id"
            " WHERE o.id = (SELECT min(id) FROM objection)"
        ).fetchone()
    argv = ["export", "archive", "LJ-2026-001", "-o", str(tmp_path / "a.zip"), "--db", str(db)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert code in err and "待复查" in err and "2026年12月18日" in err, err
    assert f"复查 {code}" in err


def test_outputs_are_never_overwritten_without_force_nor_folders_made_up(demo_db, tmp_path, capsys):
    """One rule for every file a command writes: an existing file is kept unless --force, and a
    missing folder above it is refused; `export results`, `draw export-pool` and `documents`
    overwrote, `report year`, `template` and `summary --out` made whole paths up."""
    db = ["--db", str(demo_db)]
    existing = tmp_path / "old.xlsx"
    csv = tmp_path / "old.csv"
    for f in (existing, csv):
        f.write_bytes(b"kept")
    overwrites = [
        ["export", "results", "--year", "2026", "-o", str(existing), *db],
        ["draw", "export-pool", "LJ-2026-001", "-o", str(csv), *db],
        ["report", "year", "--year", "2026", "-o", str(existing), *db],
        ["template", "items", "-o", str(existing)],
    ]
    for argv in overwrites:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "已存在" in err and "--force" in err, (argv, err)
        assert existing.read_bytes() == csv.read_bytes() == b"kept"
    for argv in overwrites:
        assert main([*argv, "--force"]) == 0, argv
    capsys.readouterr()
    missing = tmp_path / "nope"
    made_up = [
        ["report", "year", "--year", "2026", "-o", str(missing / "r.xlsx"), *db],
        ["template", "task", "-o", str(missing / "任务.toml")],
        ["template", "items", "-o", str(missing / "items.xlsx")],
        ["summary", "--out", str(missing / "day"), *db],
        ["documents", "LJ-2026-001-001", "-o", str(missing / "docs"), *db],
        ["export", "results", "--year", "2026", "-o", str(missing / "r.csv"), *db],
    ]
    for argv in made_up:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"{missing}" in err and "文件夹不存在" in err, (argv, err)
        assert not missing.exists(), argv
    docs = tmp_path / "docs"
    assert main(["documents", "LJ-2026-001-001", "-o", str(docs), *db]) == 0
    written = sorted(p for p in docs.rglob("*") if p.is_file())
    written[0].write_bytes(b"kept")
    capsys.readouterr()
    assert main(["documents", "LJ-2026-001-001", "-o", str(docs), *db]) == 2
    err = capsys.readouterr().err
    assert "已存在" in err and "--force" in err and written[0].read_bytes() == b"kept", err
    assert main(["documents", "LJ-2026-001-001", "-o", str(docs), "--force", *db]) == 0
    assert written[0].read_bytes().startswith(b"PK")  # a Word file again


def test_argument_names_are_the_chinese_ones_users_see(capsys):
    """`chat bind -h` showed the positional as “to”; a wrong import kind said “参数 kind”."""
    with pytest.raises(SystemExit):
        main(["chat", "bind", "-h"])
    usage = capsys.readouterr().out
    assert " to " not in usage and "部门" in usage.split("\n", 1)[0] + usage, usage
    with pytest.raises(SystemExit):
        main(["import", "target", "x.csv"])
    err = capsys.readouterr().err
    assert "参数 kind" not in err and "参数 种类 的取值“target”无效" in err, err

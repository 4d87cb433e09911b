"""A task's life on the command line: `task create` from a task file, `documents` for its
notices and record forms, `export results` and `export archive` at its end."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.cli.common import (
    CSV,
    XLSX,
    cli_ctx,
    department_named,
    existing_file,
    new_files,
    output_file,
    output_folder,
)


async def cmd_task_create(args: argparse.Namespace) -> int:
    from core.jointtask import task_invitations
    from core.taskfile import create_from_file, read_task_file

    spec = read_task_file(Path(args.file))
    async with cli_ctx(args) as ctx:
        task = await create_from_file(ctx, spec, again=args.again)
        code, title, state, commitment = task.code, task.title, task.state, task.commitment
        invited = "、".join(i.department.name for i in await task_invitations(ctx, task))
    print(
        f"已创建联合抽查任务 {code}：{title}"
        + (f"（年度抽查计划 {spec.plan}）" if spec.plan else "")
    )
    if state == "draft":
        print(f"任务为草稿（{state}），文件中没有邀请参与部门")
    else:
        print(f"已向 {invited} 发出邀请；随机种子承诺值 {commitment}")
    return 0


async def cmd_task_withdraw(args: argparse.Namespace) -> int:
    from bot.platforms.base import plain_text
    from core.consultation import CLI_HOW
    from core.consultation.withdrawal import withdraw_task
    from core.render import render

    async with cli_ctx(args) as ctx:
        done = await withdraw_task(ctx, args.code, args.reason, how=CLI_HOW)
        said = render("messages/cmd_task_withdrawn.md.j2", task=done.task, told=done.told)
    print(plain_text(said))  # the chat's reply (handlers.tasks.withdraw), as plain text
    return 0


async def cmd_documents(args: argparse.Namespace) -> int:
    from core.documents import DOC_TITLES, FORMATS, print_documents, serve_printed

    out = Path(args.output)
    async with cli_ctx(args) as ctx:
        # read only: which notices --served serves (dated today, as served) and every file,
        # rendered and written while no write lock is held (a running server keeps writing)
        printed = await print_documents(ctx, args.code, serving=args.served)
        # after the code is found: a typo makes nothing
        await asyncio.to_thread(output_folder, out)
        new_files(out, [name for name, _ in printed.files], force=args.force)
        for name, content in printed.files:
            path = out / name
            await asyncio.to_thread(path.parent.mkdir, exist_ok=True)  # the case's folder
            await asyncio.to_thread(path.write_bytes, content)
    served = None
    if args.served:
        # then one short write: a serving is recorded only with its notices printed
        async with cli_ctx(args, migrate=False) as ctx:
            served = await serve_printed(ctx, args.code, printed)
    files = printed.files
    cases = len({name.split("/", 1)[0] for name, _ in files})
    print(
        f"已生成 {cases} 户的检查文书 {len(files) // len(FORMATS)} 份"
        f"（{'、'.join(DOC_TITLES.values())}，每份 Word 与网页各一个文件）→ {out}"
    )
    if served is not None:
        others = cases - len(served)
        print(
            f"已登记 {len(served)} 户的通知书已送达（案件改为“已通知”，或检查组变更后重新送达）"
            + (
                f"；另 {others} 户未登记：已登记过且检查组未变、已开始检查、尚无检查组"
                "或检查组有人离岗未更换"
                if others
                else ""
            )
        )
        changed = sorted(set(printed.serving) - set(served))
        if changed:
            print(
                f"注意：{'、'.join(changed)} 在打印期间已开始检查、检查组变更或已由检查组成员"
                "领取，未登记送达；这些案件的通知书请重新生成后再送达"
            )
    for note in printed.unreplaced:
        print(f"注意：{note}")
    return 0


RESULT_FORMATS = XLSX | CSV


async def cmd_export_results(args: argparse.Namespace) -> int:
    from core.exports import RESULT_LAYOUT, ExportFormat, results_export

    out = output_file(args.output, RESULT_FORMATS, force=args.force)
    fmt: ExportFormat = "csv" if out.suffix.lower() == ".csv" else "xlsx"
    async with cli_ctx(args) as ctx:
        department = await department_named(ctx, args.department) if args.department else None
        data, n = await results_export(ctx, args.year, department, fmt)
    await asyncio.to_thread(out.write_bytes, data)
    kind = RESULT_FORMATS[out.suffix.lower()]
    whose = f"{department.name}：" if department else ""  # which one an informal word matched
    print(f"{whose}已导出 {args.year} 年已公示检查结果 {n} 条（{RESULT_LAYOUT}，{kind}）→ {out}")
    return 0


async def cmd_export_archive(args: argparse.Namespace) -> int:
    from bot.config import attachments_dir, load_settings
    from core.archive.closing import archive_task
    from core.attachments import FileStore

    out = output_file(args.output, {".zip": "ZIP 压缩包"}, force=None, kept=ARCHIVE_KEPT)
    store = FileStore(attachments_dir(load_settings(args.config)))
    async with cli_ctx(args) as ctx:
        data, task, again = await archive_task(ctx, args.task, store)
        # written before the commit: a task is closed only once its archive exists
        await asyncio.to_thread(write_new_archive, out, data)
        code = task.code
    if again:
        print(f"任务 {code} 此前已立卷归档（状态仍为“已归档”），已另存一份归档副本 → {out}")
    else:
        print(f"任务 {code} 已立卷归档，状态改为“已归档” → {out}")
    return 0


# An existing archive is never overwritten: it may be the one whose manifest digest the
# audit recorded (task.closed)
ARCHIVE_KEPT = "（已有的归档文件不覆盖：审计记录的是它的摘要）"


def write_new_archive(out: Path, data: bytes) -> None:
    """`out`, unless made since the command began: refused before the commit, so nothing is
    recorded."""
    try:
        with out.open("xb") as f:
            f.write(data)
    except FileExistsError:
        raise existing_file(out, None, ARCHIVE_KEPT) from None

"""Stage 1, consultation: task creation, invitations, answers and expiry
(seeds 000 §五–§七, 001 第十四条).

draft → consulting (seed committed, invitations out) → ready (every invitation answered or
expired). `creation` makes the draft task; `opening` commits the seed, sends the invitations and
closes the consultation once nothing is pending; `answers` holds who may answer, accept and
decline, and the answer page; `expiry` expires the silent ones. Every service mutates rows, then
calls `record` once per state change in the same session; the caller commits. Refusals raise a
DomainError and change nothing. `withdrawal` withdraws (撤销) a task created by mistake; how a
user does it is worded here once, as the draw's refusals point to it too.
"""

# How a task is withdrawn, worded once for the chat's help, the CLI's help, the README and every
# message pointing to it: the chat's command and the CLI's, each exactly ({code}, {reason}).
CHAT_HOW = "撤销 {code} {reason}"
CLI_HOW = "lianjian task withdraw {code} --reason {reason}"
WHEN = (
    "撤销误建的任务：抽取范围冻结前可以撤销，已冻结的抽取超出一般事项抽查比例上限、无法确认的"
    "也可以撤销；须写明撤销理由，未答复的邀请随之关闭，受邀部门收到通知"
)


def how_to_withdraw(code: str = "编号") -> str:
    """Both ways to withdraw task `code`, for a message that points to withdrawing."""
    chat = CHAT_HOW.format(code=code, reason="理由")
    cli = CLI_HOW.format(code=code, reason="理由")
    return f"聊天中发送“{chat}”，或在命令行运行“{cli}”"

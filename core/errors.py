"""Domain errors. Every message is Chinese because it is shown to officers as is."""

import errno
import re


class DomainError(Exception):
    """An operation the rules do not allow; `str(err)` is the user-facing Chinese message."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "not_found"


class PermissionDenied(DomainError):
    """`action` and `subject` let the caller audit the refusal in its own transaction."""

    code = "permission_denied"

    def __init__(self, message: str, *, action: str = "", subject: str = "") -> None:
        super().__init__(message)
        self.action = action
        self.subject = subject


class InvalidTransition(DomainError):
    code = "invalid_transition"


class ValidationFailed(DomainError):
    """`field` names the form field the message belongs next to ("" = the whole entry)."""

    code = "validation_failed"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


_OS_REASONS = {
    errno.ENOENT: "文件或文件夹不存在，请检查路径",
    errno.ENOTDIR: "路径中有一段不是文件夹，请检查路径",
    errno.EISDIR: "这是一个文件夹，请给出文件名",
    errno.EEXIST: "已有同名的文件，请换一个输出目录",
    errno.EACCES: "没有读写权限",
    errno.EPERM: "没有读写权限",
    errno.ENOSPC: "磁盘空间不足",
    errno.EROFS: "文件系统只读，不能写入",
}


def os_reason(err: OSError) -> str:
    """What the operating system refused, in Chinese, without the path."""
    if err.errno is None:  # raised with a message of our own (配置文件不存在：…)
        return str(err)
    return _OS_REASONS.get(err.errno, err.strerror or str(err))


def toml_position(err: ValueError) -> str:
    """“第 3 行第 8 列附近” from a TOML or JSON parser's error, or "" when it names none."""
    line, column = getattr(err, "lineno", None), getattr(err, "colno", None)
    if line is None and (found := re.search(r"line (\d+), column (\d+)", str(err))):
        line, column = int(found.group(1)), int(found.group(2))
    return f"第 {line} 行第 {column} 列附近" if line is not None else ""

"""Domain errors. Every message is Chinese because it is shown to officers as is."""


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

"""The one error type for failures a user can cause; the CLI turns it into one stderr line and an exit code."""

#: Exit codes (documented in docs/annotating.md): everything done / some inputs failed / usage or configuration error.
EXIT_OK = 0
EXIT_INPUT_FAILED = 1
EXIT_USAGE = 2


class EmocliError(Exception):
    """A user-caused failure with a one-line message (no traceback is shown for it)."""

    def __init__(self, message: str, exit_code: int = EXIT_INPUT_FAILED) -> None:
        super().__init__(message)
        self.message = " ".join(str(message).split())  # always one line
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


def os_error_text(exc: OSError) -> str:
    """An OSError as "reason: path" (the destination of a failed rename, else its file), for one error line."""
    where = exc.filename2 or exc.filename
    return f"{exc.strerror or exc}: {where}" if where else str(exc.strerror or exc)


class UsageError(EmocliError):
    """A bad option, a missing path or an unusable model/config (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)

"""Typed errors. Deep code raises these; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PerseusError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class InputError(PerseusError):
    """Bad input from the user (scenario, flags, model repository): exit code 2, one line."""

    exit_code = 2

    def __init__(self, source: str, field: str | None, reason: str):
        self.source, self.field, self.reason = str(source), field, reason
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {reason}")


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for the known name closest to a misspelt ``word`` (difflib's ratio of at
    least 0.6, its default cutoff), or "" when none is close: appended to an InputError's reason."""
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class ServerError(PerseusError):
    """The Triton server failed to start, died, or a model failed to load."""

    def __init__(self, message: str, log_tail: str = ""):
        self.log_tail = log_tail
        super().__init__(message)


class RunFailed(PerseusError):
    """A deployment failed during measurement; partial results are kept."""

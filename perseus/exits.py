"""How a command ends: typed errors become one stderr line and an exit code; Ctrl-C and SIGTERM become 130.

Every command (perseus/cli.py and the command packages: sweep, ui, ...) uses these, so the policy is
written once.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import typer

from perseus.errors import PerseusError
from perseus.kinds import Status

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention for a command stopped by Ctrl-C


def command_line() -> str:
    """The command as the user typed it, for the manifest."""
    return shlex.join(["perseus", *sys.argv[1:]])


def exit_for(status: Status | str) -> typer.Exit:
    codes = {Status.COMPLETED: EXIT_OK, Status.INTERRUPTED: EXIT_INTERRUPTED}
    return typer.Exit(codes.get(Status(status), EXIT_FAILED))


def terminate_as_interrupt(signum, frame) -> None:
    """SIGTERM (kill, CI timeouts, container stops) gets the same orderly stop as Ctrl-C."""
    raise KeyboardInterrupt


@contextmanager
def errors() -> Iterator[None]:
    """Typed errors become one line on stderr and their exit code; Ctrl-C becomes 130."""
    try:
        yield
    except PerseusError as exc:
        typer.echo(f"perseus: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("perseus: interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def build_report(build: Callable[[Path], T], run_dir: Path) -> T | None:
    """Write the report and return what ``build`` returns (the Summary), or None when it failed: a bug in
    the analysis must not cost the measurements, which are on disk."""
    try:
        return build(run_dir)
    except Exception as exc:
        typer.echo(
            f"perseus: the measurements in {run_dir} are kept, but building the report failed: {exc!r}", err=True
        )
        return None

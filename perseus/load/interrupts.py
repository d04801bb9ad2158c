"""Interrupts (Ctrl-C, SIGTERM) that are never lost.

Python runs a signal handler between two bytecodes of the main thread, wherever that is. The handlers
perseus runs under raise KeyboardInterrupt (Python's own for SIGINT, the CLI's for SIGTERM). Raised
inside a finalizer or a callback whose errors are ignored ("Exception ignored in ..."), it vanishes,
and the run would go on to its end. ``InterruptGuard`` remembers the signal so that ``check()`` can
raise it again from a place that does not swallow it.

``held()`` is for clean-up that must run to its end (stopping the server, writing the records): the
first interrupt inside it is only remembered, and a second one is raised as usual, so a clean-up that
hangs can still be broken off.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator


class InterruptGuard:
    """While entered (in the main thread): SIGINT and SIGTERM are remembered, then passed to the handler
    that was there before. Handlers that are not Python functions (SIG_DFL, SIG_IGN) are left alone.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.seen = False
        self._holding = False  # inside held(), until its first interrupt: that one is not raised
        self._previous: dict[int, object] = {}
        self._previous_hook = None

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                previous = signal.getsignal(sig)
                if callable(previous):  # a Python handler that raises: wrap it; leave SIG_DFL/SIG_IGN alone
                    self._previous[sig] = previous
                    signal.signal(sig, self._handle)
            self._previous_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def _unraisable(self, info) -> None:
        # An interrupt Python could not raise ("Exception ignored in ..."): remembered, not printed.
        if not (self.seen and isinstance(info.exc_value, KeyboardInterrupt)):
            self._previous_hook(info)

    def _handle(self, signum, frame) -> None:
        self.seen = True
        if self._holding:
            self._holding = False  # the next one goes through
            return
        self._previous[signum](signum, frame)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """The first interrupt inside is remembered (``seen``) and not raised; a second one is raised."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False

    def check(self) -> None:
        if self.seen:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        if self._previous_hook is not None:
            sys.unraisablehook = self._previous_hook

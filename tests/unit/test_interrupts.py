"""An interrupt that lands where Python ignores exceptions is not lost (perseus.load.interrupts)."""

from __future__ import annotations

import contextlib
import signal
import sys

import pytest

from perseus.load.interrupts import InterruptGuard


def test_a_swallowed_sigint_is_raised_again():
    before = signal.getsignal(signal.SIGINT)
    with InterruptGuard() as guard:
        guard.check()  # nothing yet
        with contextlib.suppress(KeyboardInterrupt):  # as a finalizer's "Exception ignored in ..." does
            signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            guard.check()
    assert signal.getsignal(signal.SIGINT) is before


def test_an_interrupt_in_a_finalizer_is_not_printed_but_raised_again(capsys):
    class Finalized:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)

    hook = sys.unraisablehook
    with InterruptGuard() as guard:
        Finalized()  # collected at once: the KeyboardInterrupt is "ignored" by Python
        assert guard.seen
        with pytest.raises(KeyboardInterrupt):
            guard.check()
    assert "KeyboardInterrupt" not in capsys.readouterr().err
    assert sys.unraisablehook is hook


def test_the_previous_sigterm_handler_still_runs():
    calls = []

    def cli_handler(signum, frame):
        calls.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, cli_handler)
    try:
        with InterruptGuard() as guard:
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGTERM)
            assert calls == [signal.SIGTERM]
            assert guard.seen
        assert signal.getsignal(signal.SIGTERM) is cli_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_default_handlers_are_left_alone():
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with InterruptGuard():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_inside_held_the_first_interrupt_is_remembered_and_a_second_is_raised():
    with InterruptGuard() as guard:
        with guard.held():
            signal.raise_signal(signal.SIGINT)  # not raised: the clean-up goes on
            assert guard.seen
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)  # the second breaks a clean-up that hangs
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # outside held() again: raised at once

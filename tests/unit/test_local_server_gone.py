"""LocalServer.gone(): how a server that stopped on its own is named (a real child process, really killed)."""

import signal
import subprocess
import sys

from perseus.server.local import CRASHED, LocalServer, signal_name, stub_regions
from perseus.server.tracing import CRASH_NOTE


def _stopped(tmp_path, how: signal.Signals | None, note: str = "") -> str:
    server = LocalServer(tmp_path / "repo", tmp_path / "server.log", crash_note=note)
    code = "import time; time.sleep(30)" if how else "raise SystemExit(3)"
    server._proc = subprocess.Popen([sys.executable, "-c", code])  # stands in for tritonserver's process
    if how:
        server._proc.send_signal(how)
    server._proc.wait(timeout=10)
    return server.gone()


def test_a_signal_is_a_crash_named_by_the_signal_with_the_known_fault(tmp_path):
    message = _stopped(tmp_path, signal.SIGSEGV, CRASH_NOTE)
    assert message.startswith(CRASHED) and ", SIGSEGV)" in message
    assert message.endswith(CRASH_NOTE)


def test_a_kill_from_outside_and_an_exit_are_not_crashes(tmp_path):
    killed = _stopped(tmp_path, signal.SIGKILL, CRASH_NOTE)
    assert killed.startswith("tritonserver killed by SIGKILL (pid ") and CRASH_NOTE not in killed
    assert _stopped(tmp_path, signal.SIGABRT).startswith(CRASHED)  # untraced: no note
    assert CRASH_NOTE not in _stopped(tmp_path, signal.SIGABRT)
    exited = _stopped(tmp_path, None, CRASH_NOTE)
    assert exited.endswith("exit code 3)") and not exited.startswith(CRASHED) and CRASH_NOTE not in exited


def test_a_signal_without_a_name():
    assert signal_name(signal.SIGRTMIN + 1) == f"signal {signal.SIGRTMIN + 1}"


def test_stub_regions_are_read_off_the_stubs_argv_only():
    region = "triton_python_backend_shm_region_26908df0-5ede-4640-bd58-183afdbfde65"
    stub = "/tmp/perseus-backends-x/python/triton_python_backend_stub"
    cmdlines = {
        1: [stub, "/repo/m/1/model.py", region, "1048576", "1048576", "1938"],
        2: ["/opt/tritonserver", "--model-repository=/repo", region + "-server"],  # not a stub
        3: [stub, "/repo/m/1/model.py", "../../etc/passwd", "1048576"],  # not a region's name
        4: [stub, "/repo/m/1/model.py"],  # too short
        5: [],  # a zombie's empty cmdline
    }
    assert stub_regions(cmdlines) == {region}

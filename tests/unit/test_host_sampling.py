"""Host telemetry's one read of the process table per tick: real processes, a real /proc."""

import os
import subprocess
import sys
import time

import psutil

from perseus.telemetry import host

SLEEPER = "import time; time.sleep(60)"
# A parent with two children: a stand-in for tritonserver and its Python-backend stubs.
PARENT = (
    "import subprocess, sys, time\n"
    f"kids = [subprocess.Popen([sys.executable, '-c', {SLEEPER!r}]) for _ in range(2)]\n"
    "time.sleep(60)"
)


def _tree():
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    deadline = time.monotonic() + 10
    while len(psutil.Process(parent.pid).children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return parent, {c.pid for c in psutil.Process(parent.pid).children()}


def _end(parent):
    for kid in psutil.Process(parent.pid).children():
        kid.kill()
    parent.kill()
    parent.wait()


def test_parents_agree_with_psutil_even_for_a_name_with_spaces_and_parentheses(tmp_path):
    odd = tmp_path / "a) b (c"  # the command name /proc/<pid>/stat puts in parentheses
    odd.symlink_to(sys.executable)
    child = subprocess.Popen([str(odd), "-c", SLEEPER])
    try:
        time.sleep(0.3)
        found = host.parents()
        assert found[child.pid] == os.getpid()
        assert found[os.getpid()] == os.getppid()
        assert psutil.Process(child.pid).name() == "a) b (c"
    finally:
        child.kill()
        child.wait()


def test_the_table_gives_each_tree_and_the_samplers_share_it():
    parent, kids = _tree()
    try:
        table = host.ProcessTable()
        assert table.tree(parent.pid) == {parent.pid, *kids}
        assert parent.pid in table.tree(os.getpid())  # this process started it
        samplers, server_pids = host.process_samplers(parent.pid)
        assert server_pids() == {parent.pid, *kids}  # the GPU sampler's view of the server tree
        loadgen, server = samplers
        host.sample_rows(samplers, 0.0)  # psutil's first CPU reading of a process is 0 by definition
        busy = time.process_time() + 0.3
        while time.process_time() < busy:  # this process is busy; the tree sleeps
            pass
        rows = dict(host.sample_rows(samplers, 1.0))
        cpu = {s.role: rows[s][0][4] for s in samplers}
        rss = {s.role: rows[s][1][4] for s in samplers}
        assert cpu["loadgen"] > 20 and cpu["server"] < 20  # the server tree is left out of the loadgen's
        # The server's RSS is its three processes', more than one Python's.
        assert rss["server"] > 2 * psutil.Process(parent.pid).memory_info().rss
        assert server.rows(2.0, table) is not None and loadgen.rows(2.0) is not None  # a table is optional
    finally:
        _end(parent)


def test_the_tree_of_a_process_that_ended_is_empty():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert host.tree(child.pid)() == set()
    assert host.tree(os.getpid())() >= {os.getpid()}

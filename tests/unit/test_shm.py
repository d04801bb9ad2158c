"""What a server leaves in /dev/shm: found in its processes' memory maps, removed after stop and by the watchdog.

The files are this test's own, made under SHM_DIR with a name no server uses; no server is needed
(tests/integration/test_frameworks.py checks MLServer's semaphores, test_server_stop.py Triton's regions).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from perseus import children
from perseus.server.shm import SHM_DIR, Leftovers, group_mapped, mapped_names
from tests.unit.test_children import GONE_WITHIN_S, Parent

pytestmark = pytest.mark.skipif(not SHM_DIR.is_dir(), reason="no /dev/shm on this host")

# Maps each path given on its command line; the second is unlinked once mapped (a "(deleted)" mapping).
MAPPER = textwrap.dedent(
    """
    import mmap, os, sys, time
    maps = []
    for path in sys.argv[1:]:
        with open(path, "w+b") as f:
            f.write(b"x" * 4096)
            f.flush()
            maps.append(mmap.mmap(f.fileno(), 4096))
    os.unlink(sys.argv[2])
    print("mapped", flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def names():
    made = [f"perseus-test-{uuid.uuid4().hex}" for _ in range(3)]
    yield made
    for name in made:
        (SHM_DIR / name).unlink(missing_ok=True)


def test_the_files_a_group_maps_under_shm_dir_are_found_and_unlinked_ones_are_not(names):
    kept, unlinked, _ = names
    proc = children.spawn(
        [sys.executable, "-c", MAPPER, str(SHM_DIR / kept), str(SHM_DIR / unlinked)], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout.readline() == b"mapped\n"
        assert kept in mapped_names([proc.pid])
        assert unlinked not in mapped_names([proc.pid])  # "(deleted)" in the map: nothing to remove
        assert kept in group_mapped([proc.pid])  # spawn() made it a group's leader
        assert mapped_names([proc.pid + 10_000_000]) == set()  # no such process: nothing, no error
    finally:
        children.signal_group(proc, 9)
        proc.wait()


def test_remove_unlinks_what_was_noted_and_skips_what_is_gone(names):
    present, gone, _ = names
    (SHM_DIR / present).write_bytes(b"x")
    left = Leftovers()
    left.note([present, gone])
    left.remove()
    assert not (SHM_DIR / present).exists()
    assert left.names == set()
    left.remove()  # twice is fine


def test_the_watchdog_removes_every_noted_file_when_perseus_is_sigkilled(names):
    first, second, never_noted = names
    for name in names:
        (SHM_DIR / name).write_bytes(b"x")
    body = f"""
    from perseus.server.shm import Leftovers
    left = Leftovers()
    left.note([{first!r}])
    left.note([{first!r}, {second!r}])  # a second guard for both replaces the first one
    print("{{}}", flush=True)
    """
    parent = Parent(body)
    parent.kill()
    deadline = time.monotonic() + GONE_WITHIN_S
    while ((SHM_DIR / first).exists() or (SHM_DIR / second).exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (SHM_DIR / first).exists() and not (SHM_DIR / second).exists()
    assert (SHM_DIR / never_noted).exists()

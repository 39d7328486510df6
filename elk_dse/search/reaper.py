"""Fate-sharing for the local Ray cluster a sweep starts: when the driver dies, so does everything it started.

Ray's head processes (GCS, raylet, ...) exit soon after a driver that started them is SIGKILLed, but the
raylet's dashboard and runtime-env agents linger for a minute or more (they try to report the raylet's death
to a GCS that is gone), and so may idle workers. The driver therefore starts this watchdog right after
``ray.init``: a small process in its own session that

- holds the read end of a pipe whose write end only the driver holds (the kernel closes it when the driver
  dies, however it dies: exit, exception, SIGKILL),
- every second records the descendants of Ray's head processes (pid and start time, read from /proc),
- on end-of-file waits a moment for Ray's own shutdown, then SIGKILLs every recorded process still alive
  whose start time matches (so a reused pid is never touched). It never looks beyond that family, so
  other Ray sessions and other sweeps on the machine are safe.

Linux only (it reads /proc); elsewhere the driver does not start it.

    python -m elk_dse.search.reaper <root pid> [<root pid> ...]   (stdin: the driver's pipe)
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

POLL_S = 1.0
GRACE_S = 1.0


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time in clock ticks, state) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[1]), int(fields[19]), fields[0]


def family(roots: list[int]) -> dict[int, int]:
    """{pid: start time} of the roots and all their descendants alive now."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None:
                children.setdefault(info[0], []).append(int(entry))
                starts[int(entry)] = info[1]
    out: dict[int, int] = {}
    stack = [r for r in roots if r in starts]
    while stack:
        pid = stack.pop()
        if pid in out:
            continue
        out[pid] = starts[pid]
        stack.extend(children.get(pid, []))
    return out


def reap(known: dict[int, int]) -> int:
    """SIGKILL every recorded process still alive with the same start time; returns how many."""
    killed = 0
    for pid, start in known.items():
        info = _stat(pid)
        if info is None or info[1] != start or info[2] == "Z":
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except OSError:
            pass
    return killed


def main(argv: list[str]) -> int:
    roots = [int(a) for a in argv]
    known: dict[int, int] = {}
    fd = sys.stdin.fileno()
    while True:
        known.update(family(roots + list(known)))
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if ready and not os.read(fd, 4096):  # end of file: the driver is gone
            break
    time.sleep(GRACE_S)
    known.update(family(list(known)))
    reap(known)
    return 0


def start(roots: list[int]):
    """Start the watchdog for ``roots`` (Ray's head process pids); returns its Popen (keep a reference: the
    pipe's write end must stay open for as long as the driver lives). None where /proc is missing."""
    import subprocess

    if not Path("/proc/self/stat").exists():
        return None
    return subprocess.Popen([sys.executable, "-m", "elk_dse.search.reaper", *map(str, roots)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the driver's terminal is the driver's to handle
    sys.exit(main(sys.argv[1:]))

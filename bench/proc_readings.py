"""What the benchmarks read from /proc: a process tree, its CPU time and memory, the machine's busy time.

CPU time per unit of work is read here rather than timed, because other load on the machine
distorts it less than throughput.
"""

import contextlib
import os
import pathlib

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children]
    return []


def process_tree(pid: int) -> list[int]:
    """Return a process and its descendants (a gunicorn master and its workers)."""
    return [pid, *(grandchild for child in _children(pid) for grandchild in process_tree(child))]


def cpu_seconds(pids: list[int]) -> float:
    """Return the CPU time (user and system, every thread) the processes have used so far."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return total


def machine_busy_seconds() -> float:
    """Return the CPU time all cores of the machine have spent busy so far (everything but idle)."""
    fields = [int(value) for value in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS


def rss_mb(pids: list[int]) -> float:
    """Return the sum of the processes' resident set sizes (VmRSS), in MB."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024

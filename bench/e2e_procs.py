"""CPU time and resident memory of the running system's processes, read from /proc (Linux only).

A process is counted with every descendant: its own time, the time of the children it has waited
for (``cutime``/``cstime``) and the time of the descendants still alive, so PostgreSQL's backends,
which come and go with connections, are all in the postmaster's figure."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
SERVICES = ("gateway", "trigger", "orchestrator", "node-runner", "approval")
"""The five services, by the names of their pid files in ``.data/<profile>/run/``."""


@dataclass(frozen=True)
class Tracked:
    """A process (with its descendants) whose CPU and memory are figures; ``system`` ones make the total."""

    name: str
    pid: int
    system: bool = True


def _stat_fields(pid: int) -> list[str] | None:
    return _stat_fields_at(Path(f"/proc/{pid}/stat"))


def _stat_fields_at(path: Path) -> list[str] | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _tree(pid: int, children: dict[int, list[int]]) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, ()))
    return found


def _cpu_ticks(pid: int) -> int:
    fields = _stat_fields(pid)  # fields[11:15]: utime, stime, cutime, cstime
    return sum(int(value) for value in fields[11:15]) if fields else 0


COMPILER_THREADS = ("C1 CompilerThre", "C2 CompilerThre")
"""HotSpot's JIT compiler threads as /proc names them (a thread's name is cut to 15 characters)."""


def compiler_ms(pid: int) -> float:
    """CPU milliseconds a JVM's JIT compiler threads have used so far (0 for any other process). A
    broker just started compiles its hot code during its first minutes of load, on a core the
    services want too. A compiler thread that ended has taken its time with it: a lower bound."""
    ticks = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        if name.startswith(COMPILER_THREADS) and (fields := _stat_fields_at(task / "stat")):
            ticks += int(fields[11]) + int(fields[12])
    return ticks * 1000 / TICK


def _kib(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_ms(tracked: Iterable[Tracked]) -> dict[str, float]:
    """CPU milliseconds (user + system) each tracked process and its descendants have used so far."""
    children = _children()
    return {t.name: sum(_cpu_ticks(p) for p in _tree(t.pid, children)) * 1000 / TICK for t in tracked}


def rss_mb(tracked: Iterable[Tracked]) -> dict[str, float]:
    """Resident memory (VmRSS, MB) of each tracked process with its descendants; shared pages count
    once per process, so PostgreSQL's shared buffers are counted in every backend that touched them."""
    children = _children()
    return {
        t.name: sum(_kib(f"/proc/{p}/status", "VmRSS:") for p in _tree(t.pid, children)) / 1024
        for t in tracked
    }


def pss_mb(tracked: Iterable[Tracked]) -> dict[str, float]:
    """Proportional memory (PSS, MB): each shared page divided among the processes sharing it, so
    the sum over processes is what they take together (0 where smaps_rollup cannot be read)."""
    children = _children()
    return {
        t.name: sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in _tree(t.pid, children)) / 1024
        for t in tracked
    }


def _pid_from(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def system_processes(data_dir: Path) -> tuple[list[Tracked], list[str]]:
    """The five services, Kafka and PostgreSQL (which make the total), Prometheus and this client
    (which do not); and the names of those not found."""
    run_dir = data_dir / "run"
    wanted: list[tuple[str, Path, bool]] = [(name, run_dir / f"{name}.pid", True) for name in SERVICES]
    wanted += [
        ("kafka", run_dir / "kafka.pid", True),
        ("postgresql", data_dir / "pg" / "postmaster.pid", True),
        ("prometheus", run_dir / "prometheus.pid", False),
    ]
    tracked, missing = [], []
    for name, path, system in wanted:
        pid = _pid_from(path)
        if pid is None:
            missing.append(name)
        else:
            tracked.append(Tracked(name, pid, system))
    tracked.append(Tracked("bench client", os.getpid(), system=False))
    return tracked, missing

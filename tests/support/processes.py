"""Every service as a real process, on free ports, in the test's namespace; stopped with SIGTERM."""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from millrace_common.platform.secrets import new_key

from tests.support.infra import Infra

SERVICES = ("gateway", "trigger", "orchestrator", "node-runner", "approval")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _die_with_this_process() -> Callable[[], None] | None:
    """For a child started from the main thread: a ``preexec_fn`` that asks Linux to SIGTERM it when
    this process ends, so a test run that is killed (a timeout, an interrupted CI job) leaves no
    service behind. The signal follows the thread that started the child, so only the main thread,
    which lives as long as the run, asks for it."""
    if threading.current_thread() is not threading.main_thread() or not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def ask() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return ask


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago: every socket stays bound until all are
    drawn, so two of them cannot be the same port."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


class PortTaken(RuntimeError):
    """A service's port was taken between drawing it and the service binding it."""


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@dataclass
class System:
    infra: Infra
    namespace: str
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    encryption_key: str = field(default_factory=new_key)
    label: str = ""
    """Tells the logs of two systems in one namespace apart (two instances of every service)."""

    def start(
        self,
        names: tuple[str, ...] = SERVICES,
        extra_env: dict[str, str] | None = None,
        ready_timeout: float = 90,
    ) -> None:
        # A drawn port is free only until someone binds it: another process may take it before the
        # service, which spends seconds starting before it binds, gets there. Then the service
        # exits, and whatever holds the port may even answer /readyz; start again on other ports.
        running = [name for name in names if name in self.services]
        if running:
            raise ValueError(f"already started (stop them first): {running}")
        for attempt in range(1, 4):
            try:
                self._spawn(names, extra_env)
                self.wait_ready(names, ready_timeout)
                return
            except BaseException as error:
                # A fixture that fails here never reaches its teardown: stop what this call started.
                logs = [self.services[name].log_path for name in names if name in self.services]
                self._stop_together(names, timeout=10)
                if not isinstance(error, PortTaken) or attempt == 3:
                    raise
                for log_path in logs:  # kept for the record, beside the next attempt's
                    log_path.replace(log_path.with_suffix(f".port-taken-{attempt}.log"))
                reason = str(error).splitlines()[0]
                print(f"[system] {reason}; starting {', '.join(names)} again on other ports", file=sys.stderr)

    def _spawn(self, names: tuple[str, ...], extra_env: dict[str, str] | None) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        approval = ports.get("approval") or (
            self.services["approval"].port if "approval" in self.services else None
        )
        for name in names:
            port = ports[name]
            log_path = ARTIFACTS / f"{self.namespace}{self.label}-{name}.log"
            env = {
                **os.environ,
                **self.infra.env(self.namespace),
                "MILLRACE_HTTP_PORT": str(port),
                "PYTHONUNBUFFERED": "1",
                "MILLRACE_JWT_SECRET": self.jwt_secret,
                "MILLRACE_ENCRYPTION_KEY": self.encryption_key,
                # The gateway forwards the web app's approval calls to this system's approval service.
                **({"MILLRACE_APPROVAL_API_URL": f"http://127.0.0.1:{approval}"} if approval else {}),
                **(extra_env or {}),
            }
            executable = Path(sys.executable).parent / f"millrace-{name}"
            with open(log_path, "wb") as out:
                process = subprocess.Popen(
                    [str(executable)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_this_process(),  # noqa: PLW1509 - only prctl, resolved before the fork
                )
            self.services[name] = ServiceProcess(name, port, process, log_path)

    def wait_ready(self, names: tuple[str, ...], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        waiting = set(names)
        while waiting:
            for name in list(waiting):
                service = self.services[name]
                if service.process.poll() is not None:
                    log = service.log()
                    failure = PortTaken if "address already in use" in log else RuntimeError
                    raise failure(f"{name} exited with {service.process.returncode}:\n{log}")
                try:
                    if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                        # Ready only if this process answered, not another on a port taken first
                        # (another system's service of the same name included).
                        if not holds_port(service.process.pid, service.port):
                            raise PortTaken(f"port {service.port} of {name} is held by another process")
                        waiting.discard(name)
                except httpx.HTTPError:
                    pass
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"not ready in {timeout} s: {sorted(waiting)}")
            time.sleep(0.3)

    def url(self, name: str) -> str:
        return self.services[name].url

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> int:
        """Stop one service; returns its exit code (SIGKILL after ``timeout`` gives -9)."""
        service = self.services.pop(name)
        if service.process.poll() is None:
            service.process.send_signal(sig)
        return _wait_exit(service, timeout)

    def stop_all(self, timeout: float = 20) -> dict[str, int]:
        """SIGTERM every service at once (once: a second signal would cut a clean shutdown short),
        then collect the exit codes."""
        return self._stop_together(tuple(self.services), timeout)

    def _stop_together(self, names: tuple[str, ...], timeout: float) -> dict[str, int]:
        stopping = {name: self.services.pop(name) for name in names if name in self.services}
        for service in stopping.values():
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        return {name: _wait_exit(service, timeout) for name, service in stopping.items()}


def holds_port(pid: int, port: int) -> bool:
    """Whether process ``pid`` has a socket listening on TCP ``port``: the port's listening sockets
    (/proc/net/tcp and tcp6) against the process's open files. True where /proc cannot tell."""
    sockets = listening_sockets(port)
    fds = Path(f"/proc/{pid}/fd")
    if sockets is None or not fds.exists():
        return True
    held = _holds(fds, sockets)
    return True if held is None else held


def listening_pid(port: int) -> int | None:
    """The process listening on TCP ``port`` of this machine, if /proc tells (the lowest pid where
    several share the socket, as a parent and the children it forked may)."""
    sockets = listening_sockets(port)
    if not sockets:
        return None
    pids = sorted(int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return next((pid for pid in pids if _holds(Path(f"/proc/{pid}/fd"), sockets) is True), None)


def listening_sockets(port: int) -> set[str] | None:
    """The sockets listening on TCP ``port`` (IPv4 and IPv6), as /proc/<pid>/fd links name them;
    None where /proc has no tables of them."""
    tables = [Path(t) for t in ("/proc/net/tcp", "/proc/net/tcp6") if Path(t).exists()]
    if not tables:
        return None
    listening = set()
    for table in tables:
        for row in table.read_text().splitlines()[1:]:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                listening.add(f"socket:[{fields[9]}]")
    return listening


def _holds(fds: Path, sockets: set[str]) -> bool | None:
    """Whether the open files ``fds`` include one of ``sockets``; None where they may not be read."""
    try:
        return any(_link(fd) in sockets for fd in fds.iterdir())
    except FileNotFoundError:  # the process is gone
        return False
    except OSError:  # not ours to read: cannot tell
        return None


def _link(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:  # closed meanwhile
        return ""


def _wait_exit(service: ServiceProcess, timeout: float) -> int:
    try:
        service.process.wait(timeout)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()
    return service.process.returncode

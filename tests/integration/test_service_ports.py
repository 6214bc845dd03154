"""Starting services on free ports: a port drawn free can be taken before the service binds it (it
spends seconds starting first), and then the holder may even answer ``/readyz``. A CI run once
marked a gateway ready on a port another service held and every call after was that service's 404.
The start now checks that the service's own process holds its port and starts again on other ports
when it does not, or when the service exits because its address is in use."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.support import processes
from tests.support.infra import Infra
from tests.support.processes import System

pytestmark = pytest.mark.integration


def _answering_as(service: str) -> type[BaseHTTPRequestHandler]:
    class Answer(BaseHTTPRequestHandler):
        """Answers like a ready Millrace service named ``service``, whatever port it is on."""

        def do_GET(self) -> None:
            ready = {"status": "ok", "service": service} if self.path == "/healthz" else {"ready": True}
            body = json.dumps(ready).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    return Answer


@contextmanager
def another_service(name: str) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _answering_as(name))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def a_silent_listener() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


HOLDERS = {
    "another service answering": lambda: another_service("trigger"),
    "the same service of another system": lambda: another_service("gateway"),
    "a listener that never answers": a_silent_listener,
}


@pytest.mark.parametrize("holder", HOLDERS)
def test_a_service_whose_port_was_taken_starts_again_on_another(
    infra: Infra, namespace: str, holder: str, monkeypatch: pytest.MonkeyPatch
):
    with HOLDERS[holder]() as taken:
        drawn = iter([[taken]])
        real = processes.free_ports
        monkeypatch.setattr(processes, "free_ports", lambda count: next(drawn, None) or real(count))
        system = System(infra, namespace, label=f"-ports-{list(HOLDERS).index(holder)}")
        try:
            system.start(("gateway",))
            gateway = system.services["gateway"]
            assert gateway.port != taken
            assert processes.holds_port(gateway.process.pid, gateway.port)
            # The gateway's own answer: its API's validation, not a stranger's 404 or 200.
            assert httpx.post(f"{gateway.url}/api/v1/auth/token", json={}, timeout=5).status_code == 422
            assert gateway.log_path.with_suffix(".port-taken-1.log").exists()
        finally:
            system.stop_all()


def test_holds_port_tells_the_listening_process_apart_from_others():
    with a_silent_listener() as port:
        assert processes.holds_port(os.getpid(), port)
        assert not processes.holds_port(os.getppid(), port)
    assert not processes.holds_port(os.getpid(), port)  # closed: nobody listens


def test_listening_pid_finds_the_process_that_listens_and_none_when_nobody_does():
    with a_silent_listener() as port:
        assert processes.listening_pid(port) == os.getpid()
    assert processes.listening_pid(port) is None

"""Starting services on free ports: a port drawn free can be taken before the service binds it (it
spends seconds starting first), and then the holder may even answer ``/readyz``. A CI run once
marked a gateway ready on a port another service held and every call after was that service's 404;
the start now checks who answers and starts again on other ports."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.support import processes
from tests.support.processes import System, free_ports

pytestmark = pytest.mark.integration


class _AnotherService(BaseHTTPRequestHandler):
    """Answers like a ready trigger service, whatever port it is on."""

    def do_GET(self) -> None:
        body = json.dumps(
            {"status": "ok", "service": "trigger"} if self.path == "/healthz" else {"ready": True}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(name="held_port")
def held_port_fixture() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AnotherService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_ports_drawn_together_are_distinct():
    ports = free_ports(50)
    assert len(set(ports)) == 50
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # each was released, free to bind


def test_a_service_whose_port_was_taken_starts_again_on_another(
    infra, namespace: str, held_port: int, monkeypatch: pytest.MonkeyPatch
):
    drawn = iter([[held_port]])
    real = processes.free_ports
    monkeypatch.setattr(processes, "free_ports", lambda count: next(drawn, None) or real(count))
    system = System(infra, namespace)
    try:
        system.start(("gateway",))
        gateway = system.services["gateway"]
        assert gateway.port != held_port
        assert httpx.get(f"{gateway.url}/healthz", timeout=5).json()["service"] == "gateway"
        assert httpx.post(f"{gateway.url}/api/v1/auth/token", json={}, timeout=5).status_code == 422
    finally:
        system.stop_all()

"""HTTP nodes per second through one node runner process, and the runner's overhead per node.

Starts one ``millrace-node-runner`` process in a namespace of its own, a local HTTP server (asyncio,
in a process of its own, keep-alive, answering a small JSON body), and drives ``http_request``
commands through Kafka:

* throughput: ``--nodes`` commands produced at once; nodes per second from the first command sent
  to the last result read, at the runner's default HTTP concurrency;
* latency: ``--sequential`` commands one at a time against a server that takes ``--server-ms``;
  overhead is the time beyond the server's own (the server reports it in a header), both end to
  end (command sent to result read: Kafka both ways, the runner's poll, policy lookup, the call)
  and inside the runner (the node's ``duration_ms``: policy lookup, request building, HTTP client).

Runs against ``MILLRACE_KAFKA_BOOTSTRAP`` and ``MILLRACE_DATABASE_URL`` (default: the dev profile);
removes its namespace, topics and processes afterwards. Usage::

    uv run --frozen python bench/runner_http.py [--nodes 5000] [--sequential 300] [--server-ms 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.node_commands import NODE_RESULT, ExecuteNode, NodeSucceededResult
from millrace_common.contracts.topics import NODES_READY_HTTP, NODES_RESULTS, Namespace, every_topic
from millrace_common.platform import fetcher_mend
from millrace_common.platform.db import create_engine
from millrace_common.platform.migrate import upgrade
from millrace_common.platform.settings import ServiceSettings
from millrace_common.platform.tables import tenant_network_policies, tenants
from millrace_common.platform.topic_admin import ensure_topics
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import insert, text

from tests.support.kafka import kafka_client

TENANT = "bench"


# -- the local server -------------------------------------------------------------------------------


def serve(port: int, delay_ms: float) -> None:
    """A minimal keep-alive HTTP/1.1 server: reads a request, waits ``delay_ms``, answers JSON and
    says in ``x-server-ms`` how long it held the request."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                started = time.perf_counter()
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                if delay_ms:
                    await asyncio.sleep(delay_ms / 1000)
                body = b'{"ok":true}'
                held = (time.perf_counter() - started) * 1000
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"x-server-ms: {held:.3f}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the namespace ----------------------------------------------------------------------------------


def prepare(settings: ServiceSettings) -> None:
    upgrade(settings)
    asyncio.run(ensure_topics(settings, Namespace(settings.namespace)))

    async def tenant() -> None:
        engine = create_engine(settings)
        try:
            async with engine.begin() as connection:
                await connection.execute(insert(tenants).values(id=TENANT, name=TENANT, created_at=utc_now()))
                await connection.execute(
                    insert(tenant_network_policies).values(
                        tenant_id=TENANT,
                        allow_private_targets=False,
                        allowed_networks=["127.0.0.0/8"],
                        updated_at=utc_now(),
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(tenant())


def remove(settings: ServiceSettings) -> None:
    engine = create_sync_engine(settings.database_url)
    with engine.begin() as connection:
        connection.execute(text(f'drop schema if exists "{settings.namespace}" cascade'))
    engine.dispose()

    async def topics() -> None:
        admin = AIOKafkaAdminClient(**kafka_client(settings.kafka_bootstrap))
        await admin.start()
        try:
            await admin.delete_topics([Namespace(settings.namespace).topic(t) for t in every_topic()])
        finally:
            await admin.close()

    asyncio.run(topics())


def start_runner(settings: ServiceSettings, log_path: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "MILLRACE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MILLRACE_DATABASE_URL": settings.database_url,
        "MILLRACE_NAMESPACE": settings.namespace,
        "MILLRACE_HTTP_PORT": str(port),
        "MILLRACE_LOG_LEVEL": "WARNING",
    }
    executable = Path(sys.executable).parent / "millrace-node-runner"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(executable)], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the runner exited with {process.returncode}; see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the runner was not ready in 90 s")


# -- driving it -------------------------------------------------------------------------------------


class Traffic:
    def __init__(self, settings: ServiceSettings, url: str) -> None:
        namespace = Namespace(settings.namespace)
        self._commands = namespace.topic(NODES_READY_HTTP)
        self._url = url
        self._producer = AIOKafkaProducer(
            **kafka_client(settings.kafka_bootstrap), linger_ms=2, max_batch_size=256 * 1024
        )
        self._consumer = AIOKafkaConsumer(**kafka_client(settings.kafka_bootstrap), fetch_max_wait_ms=5)
        self._partitions = [
            TopicPartition(namespace.topic(NODES_RESULTS), p) for p in range(NODES_RESULTS.partitions)
        ]
        self.arrived: dict[uuid.UUID, tuple[float, NodeSucceededResult]] = {}
        self.failures: list[str] = []
        self._reading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._producer.start()
        await self._consumer.start()
        fetcher_mend.mend(self._consumer)
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_end(*self._partitions)
        self._reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=20, max_records=2000)
            now = time.perf_counter()
            for found in batch.values():
                for record in found:
                    result = NODE_RESULT.validate_json(record.value)
                    if isinstance(result, NodeSucceededResult):
                        self.arrived[result.causation_id] = (now, result)
                    else:
                        self.failures.append(result.error.message)
                        self.arrived[result.causation_id] = (now, result)  # type: ignore[assignment]

    def command(self) -> ExecuteNode:
        return ExecuteNode(
            tenant_id=TENANT,
            run_id=uuid.uuid4(),
            workflow_id=uuid.uuid4(),
            node_id="call",
            node_type="http_request",
            attempt=1,
            input={"method": "POST", "url": self._url, "body": {"n": 1}},
            timeout_seconds=30,
        )

    async def send(self, command: ExecuteNode) -> asyncio.Future:
        return await self._producer.send(self._commands, command.to_bytes(), key=str(command.run_id).encode())

    async def wait_for(self, ids: set[uuid.UUID], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ids <= self.arrived.keys():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(ids - self.arrived.keys())} results missing after {timeout} s")
            await asyncio.sleep(0.002)

    async def stop(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
        await self._producer.stop()
        await self._consumer.stop()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def throughput(traffic: Traffic, count: int, runner_pid: int) -> tuple[float, float]:
    """Nodes per second, and the runner's CPU milliseconds per node."""
    commands = [traffic.command() for _ in range(count)]
    cpu_before = cpu_seconds(runner_pid)
    started = time.perf_counter()
    pending = [await traffic.send(c) for c in commands]
    await asyncio.gather(*pending)
    await traffic.wait_for({c.message_id for c in commands}, timeout=600)
    finished = max(traffic.arrived[c.message_id][0] for c in commands)
    return count / (finished - started), (cpu_seconds(runner_pid) - cpu_before) * 1000 / count


async def latencies(traffic: Traffic, count: int) -> tuple[list[float], list[float], list[float]]:
    end_to_end, inside, server = [], [], []
    for _ in range(count):
        command = traffic.command()
        sent = time.perf_counter()
        await (await traffic.send(command))
        await traffic.wait_for({command.message_id}, timeout=30)
        arrived, result = traffic.arrived[command.message_id]
        held = float(result.output["headers"]["x-server-ms"])
        server.append(held)
        end_to_end.append((arrived - sent) * 1000 - held)
        inside.append(result.duration_ms - held)
    return end_to_end, inside, server


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"p50 {statistics.median(ordered):6.2f}  p95 {pick(0.95):6.2f}  p99 {pick(0.99):6.2f}  "
        f"mean {statistics.fmean(ordered):6.2f}"
    )


async def drive(
    settings: ServiceSettings, runner_pid: int, fast_url: str, slow_url: str, args: argparse.Namespace
) -> None:
    fast, slow = Traffic(settings, fast_url), Traffic(settings, slow_url)
    await fast.start()
    await slow.start()
    try:
        warm = [fast.command() for _ in range(200)]
        for command in warm:
            await fast.send(command)
        await fast.wait_for({c.message_id for c in warm}, timeout=120)

        rate, cpu = await throughput(fast, args.nodes, runner_pid)
        print(
            f"throughput: {rate:,.0f} HTTP nodes/s ({args.nodes} nodes, server answering at once); "
            f"runner CPU {cpu:.2f} ms per node"
        )
        slow_count = min(args.nodes, 2000)
        slow_rate, slow_cpu = await throughput(slow, slow_count, runner_pid)
        print(
            f"throughput: {slow_rate:,.0f} HTTP nodes/s ({slow_count} nodes, "
            f"server taking {args.server_ms:g} ms each); runner CPU {slow_cpu:.2f} ms per node"
        )

        end_to_end, inside, server = await latencies(slow, args.sequential)
        print(
            f"latency, {args.sequential} nodes one at a time, "
            f"server holding each {statistics.median(server):.2f} ms (median):"
        )
        print(
            f"  overhead end to end (command sent -> result read, minus server) ms: {percentiles(end_to_end)}"
        )
        print(f"  overhead inside the runner (node duration minus server) ms:        {percentiles(inside)}")
        failures = fast.failures + slow.failures
        if failures:
            print(f"failures: {len(failures)}, e.g. {failures[0]}")
    finally:
        await fast.stop()
        await slow.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="HTTP nodes per second through one node runner")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--server-ms", type=float, default=2.0)
    args = parser.parse_args()

    base = ServiceSettings()
    settings = ServiceSettings(
        kafka_bootstrap=base.kafka_bootstrap,
        database_url=base.database_url,
        namespace=f"bench_{uuid.uuid4().hex[:10]}",
    )
    log_path = Path(f"/tmp/{settings.namespace}-node-runner.log")
    fast_port, slow_port = free_port(), free_port()
    servers = [
        multiprocessing.Process(target=serve, args=(fast_port, 0), daemon=True),
        multiprocessing.Process(target=serve, args=(slow_port, args.server_ms), daemon=True),
    ]
    runner: subprocess.Popen | None = None
    print(f"namespace {settings.namespace} on {settings.kafka_bootstrap}, {os.cpu_count()} CPUs", flush=True)
    prepare(settings)
    try:
        for server in servers:
            server.start()
        runner, _ = start_runner(settings, log_path)
        fast_url, slow_url = f"http://127.0.0.1:{fast_port}/hook", f"http://127.0.0.1:{slow_port}/hook"
        asyncio.run(drive(settings, runner.pid, fast_url, slow_url, args))
    finally:
        if runner is not None and runner.poll() is None:
            runner.send_signal(signal.SIGTERM)
            try:
                runner.wait(30)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()
        for server in servers:
            if server.is_alive():
                server.terminate()
                server.join(5)
        remove(settings)
        log_path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()

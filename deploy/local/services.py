#!/usr/bin/env python3
"""Start and stop Millrace's own processes (the five services) for a local profile.

    python3 deploy/local/services.py start --profile dev   # migrate, create topics, start, wait ready
    python3 deploy/local/services.py stop --profile dev
    python3 deploy/local/services.py status --profile dev

A profile with `instances` > 1 (the cluster profile: 2) starts that many processes of every
service, each on its own port (infra.service_ports) and named `<service>-<n>` in pid and log files.

Kafka and PostgreSQL are infra.py's; this file only runs what the repository builds. Stdlib only.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import infra


def instances(profile: infra.Profile) -> dict[str, tuple[str, int]]:
    """Every process to run: its name (the service's, or `<service>-<n>` when there are several
    instances) to the service and its HTTP port."""
    return {
        (name if len(ports) == 1 else f"{name}-{n}"): (name, port)
        for name, ports in infra.service_ports(profile).items()
        for n, port in enumerate(ports, start=1)
    }


def venv_bin(name: str) -> Path:
    return infra.repo_root() / ".venv" / "bin" / name


def secrets_env(profile: infra.Profile) -> dict[str, str]:
    """The profile's signing and encryption keys, made once and kept (readable by the owner only)."""
    path = profile.data_dir / "secrets.env"
    if not path.is_file():
        profile.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"MILLRACE_JWT_SECRET={secrets.token_urlsafe(48)}",
            f"MILLRACE_ENCRYPTION_KEY={base64.urlsafe_b64encode(os.urandom(32)).decode()}",
        ]
        path.touch(mode=0o600)
        path.write_text("\n".join(lines) + "\n")
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def service_env(profile: infra.Profile) -> dict[str, str]:
    approval = infra.service_ports(profile)["approval"][0]
    return {
        **os.environ,
        **profile.env(),
        **secrets_env(profile),
        "PYTHONUNBUFFERED": "1",
        # The web app's Approvals inbox: the gateway forwards /api/v1/approvals to the approval service.
        "MILLRACE_APPROVAL_API_URL": f"http://{infra.HOST}:{approval}",
    }


def prepare(profile: infra.Profile) -> None:
    """Bring the database schema up to date and create the topics (both idempotent)."""
    env = service_env(profile)
    for tool in ("millrace-migrate", "millrace-topics"):
        result = subprocess.run([str(venv_bin(tool))], env=env, text=True, capture_output=True)
        if result.returncode != 0:
            infra.die(f"{tool} failed:\n{result.stdout}{result.stderr}")
        infra.log(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"{tool} done")


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{infra.HOST}:{port}/readyz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(profile: infra.Profile) -> None:
    prepare(profile)
    env = service_env(profile)
    processes = instances(profile)
    for name, (service, port) in processes.items():
        pid_path = profile.run_dir / f"{name}.pid"
        if infra.read_pid(pid_path):
            infra.log(f"{name} already running")
            continue
        infra.ensure_free(port)
        # The service writes its JSON lines to <name>.log itself, rotated by size; what reaches its
        # stdout and stderr besides (a crash's traceback before logging is set up) goes to <name>.out.
        infra.spawn_detached(
            [str(venv_bin(f"millrace-{service}"))],
            profile.log_dir / f"{name}.out",
            pid_path,
            env={
                **env,
                "MILLRACE_HTTP_PORT": str(port),
                "MILLRACE_LOG_FILE": str(profile.log_dir / f"{name}.log"),
            },
            cwd=infra.repo_root(),
        )
    deadline = time.monotonic() + 120
    waiting = {name: port for name, (_service, port) in processes.items()}
    while waiting and time.monotonic() < deadline:
        for name, port in list(waiting.items()):
            if ready(port):
                infra.log(f"{name} ready on http://{infra.HOST}:{port}")
                del waiting[name]
            elif not infra.read_pid(profile.run_dir / f"{name}.pid"):
                output = "\n".join(infra.tail(profile.log_dir / f"{name}{end}") for end in (".log", ".out"))
                infra.die(f"{name} exited; its log and output:\n{output}")
        time.sleep(0.5)
    if waiting:
        infra.die(f"not ready after 120 s: {', '.join(waiting)} (logs in {profile.log_dir})")


def stop(profile: infra.Profile) -> None:
    for name in instances(profile):
        if infra.stop_pid_file(profile.run_dir / f"{name}.pid", timeout=20):
            infra.log(f"{name} stopped")


def status(profile: infra.Profile) -> None:
    for name, (_service, port) in instances(profile).items():
        pid = infra.read_pid(profile.run_dir / f"{name}.pid")
        state = "ready" if pid and ready(port) else ("starting or unhealthy" if pid else "stopped")
        print(f"{name:15} {state:22} http://{infra.HOST}:{port}")


def addresses(profile: infra.Profile) -> None:
    """Where everything of a started profile answers (`make up` prints it)."""
    ports = infra.service_ports(profile)
    gateways = ", ".join(f"http://{infra.HOST}:{port}" for port in ports["gateway"])
    kafka = profile.env()
    print("\nMillrace is up.")
    print(f"  API:        {gateways}  (path /api/v1; OpenAPI at /docs)")
    print("  UI:         the same addresses, at /   (the workflow builder; sign in as a tenant's user)")
    print(f"  Kafka:      {kafka['MILLRACE_KAFKA_BOOTSTRAP']}")
    if profile.clustered:
        print(f"              SASL_SSL, SCRAM-SHA-512, user {kafka['MILLRACE_KAFKA_SASL_USERNAME']}")
        print(f"              password file {kafka['MILLRACE_KAFKA_SASL_PASSWORD_FILE']}")
        print(f"              CA file {kafka['MILLRACE_KAFKA_SSL_CA_FILE']}")
        tools = profile.kafka_dir / "security" / "admin.properties"
        print(f"              Kafka's own tools: --command-config {tools}")
    print(f"  PostgreSQL: {infra.HOST}:{profile.pg_port} (user and db: millrace)")
    print(
        f"  Prometheus: http://{infra.HOST}:{profile.prometheus_port}"
        "   (alert rules and dashboards: deploy/prometheus, deploy/grafana)"
    )
    stop = "make down" + ("" if profile.name == "dev" else f" PROFILE={profile.name}")
    print(f"  Logs:       .data/{profile.name}/logs/    Stop with: {stop}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("start", "stop", "status", "addresses"))
    parser.add_argument("--profile", default="dev", choices=sorted(infra.PROFILES))
    args = parser.parse_args()
    profile = infra.get_profile(args.profile)
    commands = {"start": start, "stop": stop, "status": status, "addresses": addresses}
    commands[args.command](profile)


if __name__ == "__main__":
    main()

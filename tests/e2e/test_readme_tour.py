"""The README's five-minute tour, run as written: its ```bash blocks, in order, in one
``bash -euo pipefail``, against every service of a test system. Only the variables the tour reads
with defaults are given (the gateway, a fresh tenant, a free port for its little server, the admin
CLI), with the environment that points ``millrace-admin`` at the test's database schema."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from millrace_gateway.settings import GatewaySettings

from tests.support.processes import System, free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
# What the tour's variables default to: `make up`'s gateway (on the gateway's default port), the tenant
# the browser section signs in to, and the admin CLI in the repository's .venv.
MAKE_UP_DEFAULTS = {
    "API": f"http://127.0.0.1:{GatewaySettings.model_fields['http_port'].default}/api/v1",
    "TENANT": "acme",
    "HOOK_PORT": "9911",
    "ADMIN": ".venv/bin/millrace-admin",
}


def tour_blocks() -> list[str]:
    """The ```bash blocks from the tour's heading to the next heading (``#`` in a block is a comment)."""
    lines = README.split("\n## Five-minute tour\n", 1)[1].splitlines()
    blocks: list[str] = []
    language: str | None = None  # of the block the line is in
    block: list[str] = []
    for line in lines:
        if language is None and line.startswith("```"):
            language, block = line.removeprefix("```"), []
        elif language is None and line.startswith("#"):
            break
        elif language is not None and line == "```":
            if language == "bash":
                blocks.append("\n".join(block) + "\n")
            language = None
        elif language is not None:
            block.append(line)
    return blocks


def json_values(text: str) -> list[object]:
    """Every top-level JSON object in ``text`` (curl's answers and the server's lines run together)."""
    decoder = json.JSONDecoder()
    found: list[object] = []
    position = text.find("{")
    while position >= 0:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            position = text.find("{", position + 1)
            continue
        found.append(value)
        position = text.find("{", end)
    return found


def test_the_tour_defaults_to_make_ups_addresses():
    script = "\n".join(tour_blocks())
    defaults = dict(re.findall(r"^([A-Z_]+)=\$\{\1:-([^}]*)\}", script, flags=re.MULTILINE))
    assert defaults == MAKE_UP_DEFAULTS


def test_the_tour_runs_as_written(running_system: System, tenant: str, tmp_path: Path):
    blocks = tour_blocks()
    assert len(blocks) >= 4, "the tour's bash blocks were not found"
    env = {
        **os.environ,
        **running_system.infra.env(running_system.namespace),
        "API": f"{running_system.url('gateway')}/api/v1",
        "TENANT": tenant,
        "HOOK_PORT": str(free_port()),
        "ADMIN": str(Path(sys.executable).parent / "millrace-admin"),
    }
    # Files, not pipes: the server the tour starts in the background would hold a pipe open after
    # bash exits, when a failing step stops the tour before its `kill`.
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        tour = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", "\n".join(blocks)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out_file,
            stderr=err_file,
            start_new_session=True,
        )
        timed_out = False
        try:
            tour.wait(timeout=120)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # The tour stops its own server; whatever is left of its process group goes now.
            try:
                os.killpg(tour.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            tour.wait()
    out, err = out_path.read_text(), err_path.read_text()
    told = f"\nstdout:\n{out}\nstderr:\n{err}"
    assert not timed_out, f"the tour did not end within 120 s{told}"
    assert tour.returncode == 0, f"the tour ended with {tour.returncode}{told}"
    printed = json_values(out)
    runs = [value for value in printed if isinstance(value, dict) and "nodes" in value]
    assert len(runs) == 1, told
    run = runs[0]
    assert run["status"] == "completed", told
    assert {node["node_id"]: node["status"] for node in run["nodes"]} == {
        "lead": "succeeded",
        "notify": "succeeded",
        "done": "succeeded",
    }
    # The little server printed what the HTTP node sent it: the lead's email, lower-cased.
    assert {"email": "ada@example.com"} in printed, told

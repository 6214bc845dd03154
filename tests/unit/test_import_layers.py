"""The import contracts (``[tool.importlinter]`` in pyproject.toml, run among the static checks) hold
the code today, and fail it when a module breaks them: a service's domain importing an I/O library, or
the contracts importing a layer above them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def lint() -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def with_probe(path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """lint-imports with one more module in the tree, removed again whatever happens."""
    assert not path.exists()
    path.write_text(source)
    try:
        return lint()
    finally:
        path.unlink()


def test_the_code_keeps_every_contract():
    result = lint()
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_a_domain_module_importing_an_io_library_fails():
    probe = ROOT / "services/orchestrator/src/millrace_orchestrator/domain/layer_probe.py"
    result = with_probe(probe, "import sqlalchemy  # noqa: F401\n")
    assert result.returncode != 0
    assert "millrace_orchestrator.domain.layer_probe -> sqlalchemy" in result.stdout


def test_the_contracts_importing_the_platform_fail():
    probe = ROOT / "libs/common/src/millrace_common/contracts/layer_probe.py"
    result = with_probe(probe, "from millrace_common.platform import settings  # noqa: F401\n")
    assert result.returncode != 0
    assert "millrace_common.contracts.layer_probe -> millrace_common.platform" in result.stdout

"""What the repository installs from Debian is one list: every apt install goes through
deploy/local/infra.py's apt_install with a package of DEBIAN_PACKAGES, every package there is
installed somewhere, and docs/operations.md names exactly those packages."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "deploy" / "local" / "infra.py"


def _declared() -> dict[str, str]:
    tree = ast.parse(INFRA.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "DEBIAN_PACKAGES":
            return ast.literal_eval(node.value)
    raise AssertionError("deploy/local/infra.py has no DEBIAN_PACKAGES table")


def _installed_by_infra() -> set[str]:
    """The packages of every apt_install call: literal names, or a loop variable over literal names."""
    tree = ast.parse(INFRA.read_text())
    loops: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.For)
            and isinstance(node.target, ast.Name)
            and isinstance(node.iter, ast.Tuple)
        ) and all(isinstance(e, ast.Constant) for e in node.iter.elts):
            loops[node.target.id] = [e.value for e in node.iter.elts]
    packages: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "apt_install":
            for element in node.args[0].elts:
                if isinstance(element, ast.Constant):
                    packages.add(element.value)
                else:
                    packages.update(loops[element.id])
    return packages


def _tracked_scripts() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    wanted = re.compile(r"(\.sh|\.py|Makefile|\.ci/run|\.ya?ml)$")
    return [ROOT / line for line in listed.stdout.splitlines() if wanted.search(line)]


def test_every_package_the_infra_script_installs_is_declared_and_every_declared_one_is_installed():
    declared = set(_declared())
    assert _installed_by_infra() == declared


def test_no_script_installs_a_debian_package_except_through_apt_install():
    pattern = re.compile(r"\bapt(-get)?\s+(-\S+\s+)*install\b")
    offenders = []
    for script in _tracked_scripts():
        if script == INFRA or script == Path(__file__).resolve() or "tests/" in str(script.relative_to(ROOT)):
            continue
        for number, line in enumerate(script.read_text(errors="replace").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{script.relative_to(ROOT)}:{number}: {line.strip()}")
    # infra.py itself runs apt-get only inside apt_install (the one call with a literal "install").
    inside = [line for line in INFRA.read_text().splitlines() if re.search(r'"apt-get", "install"', line)]
    assert len(inside) == 1
    assert not offenders, "\n".join(offenders)


def test_the_operations_guide_names_exactly_the_declared_packages():
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("### What gets installed", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z0-9.+-]+)` \|", section, flags=re.MULTILINE))
    assert documented == set(_declared())

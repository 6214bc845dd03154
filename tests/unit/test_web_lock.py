"""The web app's lock check (deploy/checks/web_lock.py), which `make test` and build.sh run before npm:
the committed lock passes; a dependency added to package.json without the lock, a changed range, or a
platform's optional build missing from the lock, or a package with an install script the build skips
each fail with the name of what is wrong."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "services" / "gateway" / "web"
_spec = importlib.util.spec_from_file_location("web_lock", ROOT / "deploy" / "checks" / "web_lock.py")
web_lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(web_lock)

PACKAGE = json.loads((WEB / "package.json").read_text())
LOCK = json.loads((WEB / "package-lock.json").read_text())


def test_the_committed_lock_passes_the_check():
    assert web_lock.lock_problems(PACKAGE, LOCK) == []
    done = subprocess.run([sys.executable, str(ROOT / "deploy/checks/web_lock.py")], capture_output=True)
    assert done.returncode == 0, done.stderr


def test_a_dependency_added_without_the_lock_is_named():
    package = copy.deepcopy(PACKAGE)
    package["devDependencies"]["left-pad"] = "^1.3.0"
    assert web_lock.lock_problems(package, LOCK) == [
        "devDependencies.left-pad: package.json asks '^1.3.0', the lock has None"
    ]


def test_a_changed_range_is_named():
    package = copy.deepcopy(PACKAGE)
    package["dependencies"]["react"] = "^18.0.0"
    (problem,) = web_lock.lock_problems(package, LOCK)
    assert problem.startswith("dependencies.react: package.json asks '^18.0.0'")


def test_a_platform_build_missing_from_the_lock_is_named():
    lock = copy.deepcopy(LOCK)
    platform_builds = [p for p in lock["packages"] if p.startswith("node_modules/@rollup/rollup-")]
    assert len(platform_builds) > 10, "the lock should hold rollup's build for every platform"
    del lock["packages"]["node_modules/@rollup/rollup-win32-x64-msvc"]
    assert web_lock.lock_problems(PACKAGE, lock) == [
        "node_modules/rollup lists optional @rollup/rollup-win32-x64-msvc, which the lock does not hold"
    ]


def test_a_package_with_an_install_script_the_build_skips_is_named():
    lock = copy.deepcopy(LOCK)
    lock["packages"]["node_modules/react"]["hasInstallScript"] = True
    (problem,) = web_lock.lock_problems(PACKAGE, lock)
    assert problem.startswith("node_modules/react has an install script, which npm ci --ignore-scripts skips")


def test_the_build_and_the_image_run_no_install_script():
    assert LOCK["packages"]["node_modules/esbuild"].get("hasInstallScript")
    build = (WEB / "build.sh").read_text()
    image = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    for text in (build, image):
        installs = re.findall(r"^(?:RUN |\s*if ! )npm ci (.*)$", text, re.MULTILINE)
        assert installs and all("--ignore-scripts" in flags for flags in installs), installs

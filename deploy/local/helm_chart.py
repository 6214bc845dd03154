#!/usr/bin/env python3
"""Helm for the chart in deploy/helm: the pinned `helm` binary, and the chart's checks.

    helm_chart.py install    # build helm HELM_VERSION into .cache/tools/bin when it is missing
    helm_chart.py check      # helm lint --strict and helm template, with each values file
    helm_chart.py render [VALUES]   # the rendered manifests on stdout (default values, or VALUES)

Helm is built from source with `go install` from the Go module proxy (Go 1.22 or newer on PATH or
in /usr/local/go/bin), once: a few minutes on a cold machine, then the cached binary is used.
No Kubernetes cluster is needed: `template` renders offline. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HELM_VERSION = "v3.22.0"
ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = ROOT / ".cache" / "tools" / "bin"
HELM = BIN_DIR / "helm"
CHART = ROOT / "deploy" / "helm" / "millrace"
VALUES_FILES = {
    "default": None,
    "production": ROOT / "deploy" / "helm" / "values-production.yaml",
}
RELEASE, NAMESPACE = "millrace", "millrace"
BUILD_INFO = re.compile(rb"\nmod\thelm\.sh/helm/v3\t(v[0-9][^\t\n]*)\t")


def log(message: str) -> None:
    print(f"[helm] {message}", file=sys.stderr, flush=True)


def helm_env() -> dict[str, str]:
    """Helm's own configuration and cache under .cache/helm, not the user's home."""
    base = ROOT / ".cache" / "helm"
    return {
        **os.environ,
        "HELM_CONFIG_HOME": str(base / "config"),
        "HELM_CACHE_HOME": str(base / "cache"),
        "HELM_DATA_HOME": str(base / "data"),
    }


def installed_version() -> str | None:
    """The helm module version the cached binary was built from (Go's build info in the binary:
    `go install` without release flags leaves `helm version` saying only "v3.22")."""
    if not HELM.is_file():
        return None
    found = BUILD_INFO.search(HELM.read_bytes())
    return found[1].decode() if found else None


def go_binary() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if found is None:
        sys.exit(
            f"helm {HELM_VERSION} is missing and Go is not installed to build it: install Go "
            "(https://go.dev/dl/) or put a helm binary of that version at " + str(HELM)
        )
    return found


def install() -> Path:
    """The pinned helm binary, built with `go install` when missing or of another version."""
    if installed_version() == HELM_VERSION:
        return HELM
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    log(f"building helm {HELM_VERSION} with go install (once; a few minutes)")
    env = {**os.environ, "GOBIN": str(BIN_DIR), "CGO_ENABLED": "0", "GOFLAGS": "-trimpath"}
    result = subprocess.run(
        [
            go_binary(),
            "install",
            f"-ldflags=-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
            f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or installed_version() != HELM_VERSION:
        sys.exit(f"go install helm {HELM_VERSION} failed:\n{result.stdout}{result.stderr}")
    log(f"helm {HELM_VERSION}: {HELM}")
    return HELM


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, env=helm_env())


def values_args(values: Path | None) -> list[str]:
    return [] if values is None else ["--values", str(values)]


def render(values: Path | None) -> str:
    """`helm template` of the chart with these values (None: the chart's own values.yaml)."""
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values_args(values))
    if result.returncode != 0:
        sys.exit(f"helm template failed ({values or 'default values'}):\n{result.stderr}")
    return result.stdout


def check() -> None:
    """helm lint --strict and helm template with every values file; exits non-zero on the first failure."""
    install()
    for name, values in VALUES_FILES.items():
        linted = helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, *values_args(values))
        if linted.returncode != 0:
            sys.exit(f"helm lint --strict failed with the {name} values:\n{linted.stdout}{linted.stderr}")
        documents = render(values).count("\nkind: ")
        log(f"{name} values: lint --strict passed, template rendered {documents} objects")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install")
    commands.add_parser("check")
    rendering = commands.add_parser("render")
    rendering.add_argument("values", nargs="?", type=Path)
    args = parser.parse_args(argv)
    if args.command == "install":
        print(install())
    elif args.command == "check":
        check()
    else:
        install()
        sys.stdout.write(render(args.values))


if __name__ == "__main__":
    main()

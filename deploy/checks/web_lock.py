"""Check services/gateway/web/package-lock.json against package.json before anything installs.

`npm ci` refuses a lock that disagrees with package.json, or one that lacks another platform's
optional build (npm 11 can write such a lock from an existing node_modules): both would fail only on
the next fresh machine. This check fails now, with the names, and says how to repair the lock.

build.sh and the image run `npm ci --ignore-scripts`: a package that arrives with an install script
is named here too, unless it is listed in SCRIPTS_NOT_NEEDED after checking it works without one.
Exit status 0 when the lock is sound, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "services" / "gateway" / "web"
SECTIONS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
# Packages whose install script the build does without. esbuild's only links its platform build over
# its JavaScript launcher and runs it once; its API (what Vite calls) finds the platform build itself.
SCRIPTS_NOT_NEEDED = frozenset({"node_modules/esbuild"})


def lock_problems(package: dict, lock: dict) -> list[str]:
    """Every way the lock fails `npm ci` on a machine of any platform with an empty cache, or brings
    a package whose install script the build skips."""
    return resolution_problems(package, lock) + script_problems(lock)


def resolution_problems(package: dict, lock: dict) -> list[str]:
    """Where the lock disagrees with package.json or lacks a platform's optional build."""
    problems: list[str] = []
    packages = lock.get("packages") or {}
    root = packages.get("", {})
    for section in SECTIONS:
        wanted = package.get(section) or {}
        locked = root.get(section) or {}
        for name in sorted(set(wanted) | set(locked)):
            if wanted.get(name) != locked.get(name):
                problems.append(
                    f"{section}.{name}: package.json asks {wanted.get(name)!r}, "
                    f"the lock has {locked.get(name)!r}"
                )
    for path, entry in sorted(packages.items()):
        if not path:
            continue
        for name in entry.get("optionalDependencies") or {}:
            if not _resolvable(packages, path, name):
                problems.append(f"{path} lists optional {name}, which the lock does not hold")
    return problems


def script_problems(lock: dict) -> list[str]:
    """The locked packages with an install script that are not known to work without it."""
    return [
        f"{path} has an install script, which npm ci --ignore-scripts skips: check the package "
        "works without it and list it in deploy/checks/web_lock.py SCRIPTS_NOT_NEEDED"
        for path, entry in sorted((lock.get("packages") or {}).items())
        if entry.get("hasInstallScript") and path not in SCRIPTS_NOT_NEEDED
    ]


def _resolvable(packages: dict, path: str, name: str) -> bool:
    """Node's lookup: the package's own node_modules, then each enclosing one up to the root."""
    base = path
    while True:
        if f"{base}/node_modules/{name}" in packages:
            return True
        cut = base.rfind("/node_modules/")
        if cut < 0:
            return f"node_modules/{name}" in packages
        base = base[:cut]


def main() -> int:
    package = json.loads((WEB / "package.json").read_text())
    lock = json.loads((WEB / "package-lock.json").read_text())
    unresolved = resolution_problems(package, lock)
    problems = unresolved + script_problems(lock)
    for problem in problems:
        print(f"package-lock.json: {problem}", file=sys.stderr)
    if unresolved:
        print(
            "Repair: in services/gateway/web run 'rm -rf node_modules package-lock.json && npm install' "
            "and commit package-lock.json (a lock written from scratch holds every platform's builds).",
            file=sys.stderr,
        )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env bash
# Build the workflow builder into dist/. Dependencies come from package-lock.json through `npm ci`
# only: a lock that disagrees with package.json stops the build with npm's reason; it is never
# repaired here. npm ci runs when node_modules is missing or older than package.json or the lock;
# vite build runs when a source is newer than dist/. Quiet when nothing changed.
#
# npm ci runs no dependency's install script (--ignore-scripts). The lock's only one is esbuild's,
# an optional speed-up whose self-check races npm (`spawnSync .../esbuild ETXTBSY` failed a fresh
# CI machine); esbuild's API finds its platform build without it. web_lock.py names any other
# package that arrives with an install script.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install Node.js 20 or newer to build the workflow builder" >&2
  exit 1
fi
python3 ../../../deploy/checks/web_lock.py # names a lock that disagrees with package.json, before npm
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  if ! npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; then
    echo "npm ci failed in services/gateway/web: npm's reason is above (the lock itself passed web_lock.py)." >&2
    exit 1
  fi
fi
stale=1
if [ -f dist/index.html ]; then
  newer=$(find src index.html vite.config.ts tsconfig.json package.json package-lock.json -newer dist/index.html -print -quit)
  [ -z "$newer" ] && stale=0
fi
if [ "$stale" = 1 ]; then
  npx --no-install vite build --logLevel warn
fi

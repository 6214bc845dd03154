#!/usr/bin/env bash
# Build the workflow builder into dist/. Dependencies come from package-lock.json through `npm ci`
# only: a lock that disagrees with package.json stops the build with npm's reason; it is never
# repaired here. npm ci runs when node_modules is missing or older than package.json or the lock;
# vite build runs when a source is newer than dist/. Quiet when nothing changed.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install Node.js 20 or newer to build the workflow builder" >&2
  exit 1
fi
python3 ../../../deploy/checks/web_lock.py # names a lock that disagrees with package.json, before npm
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  if ! npm ci --no-audit --no-fund --loglevel=error; then
    echo "npm ci failed: services/gateway/web/package-lock.json must match package.json." >&2
    echo "After changing package.json, regenerate package-lock.json on your machine and commit both files." >&2
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

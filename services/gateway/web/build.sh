#!/usr/bin/env bash
# Build the workflow builder into dist/ when its sources changed since the last build: npm ci when
# node_modules is missing or older than the lock file, then vite build. Quiet when nothing changed.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install Node.js 20 or newer to build the workflow builder" >&2
  exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
stale=1
if [ -f dist/index.html ]; then
  newer=$(find src index.html vite.config.ts tsconfig.json package-lock.json -newer dist/index.html -print -quit)
  [ -z "$newer" ] && stale=0
fi
if [ "$stale" = 1 ]; then
  npm run --silent build -- --logLevel warn
fi

#!/usr/bin/env bash
# Build the workflow builder into dist/ when its sources changed since the last build: npm ci when
# node_modules is missing or older than the lock file (see below), then vite build. Quiet when nothing changed.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install Node.js 20 or newer to build the workflow builder" >&2
  exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm 11.19 writes lock files without the other platforms' optional packages (rollup's native
  # builds) and then its own `npm ci` refuses them as out of sync. `npm install` installs the same
  # locked versions; the lock file must come out unchanged, or the build stops.
  if ! npm ci --no-audit --no-fund --loglevel=error 2>/tmp/millrace-npm-ci.log; then
    cp package-lock.json /tmp/millrace-package-lock.json
    npm install --no-audit --no-fund --loglevel=error
    if ! cmp -s package-lock.json /tmp/millrace-package-lock.json; then
      cp /tmp/millrace-package-lock.json package-lock.json
      echo "package-lock.json is out of date with package.json: run npm install and commit it" >&2
      cat /tmp/millrace-npm-ci.log >&2
      exit 1
    fi
  fi
fi
stale=1
if [ -f dist/index.html ]; then
  newer=$(find src index.html vite.config.ts tsconfig.json package-lock.json -newer dist/index.html -print -quit)
  [ -z "$newer" ] && stale=0
fi
if [ "$stale" = 1 ]; then
  npm run --silent build -- --logLevel warn
fi

#!/usr/bin/env bash
# The whole test suite. Starts the test profile's Kafka and PostgreSQL (own ports and data, so a
# running `make up` system is not touched), runs pytest, and stops them again whatever happened.
# With MILLRACE_KAFKA_BOOTSTRAP and MILLRACE_DATABASE_URL already set, uses those instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
UV=$(command -v uv 2>/dev/null || echo .cache/tools/bin/uv)

started=0
cleanup() {
  if [ "$started" = 1 ]; then python3 deploy/local/infra.py stop --profile test || true; fi
}
trap cleanup EXIT

if [ -z "${MILLRACE_KAFKA_BOOTSTRAP:-}" ] || [ -z "${MILLRACE_DATABASE_URL:-}" ]; then
  started=1
  settings=$(python3 deploy/local/infra.py start --profile test)
  while IFS= read -r line; do
    case "$line" in MILLRACE_*=*) export "${line?}" ;; esac
  done <<< "$settings"
fi

# The observability tests run Debian's Prometheus and promtool; install them if missing.
python3 deploy/local/infra.py install --only prometheus

# Browser tests drive Debian's Chromium; install it (and its driver) if missing.
if [ -x deploy/local/browser.sh ]; then bash deploy/local/browser.sh; fi

# The workflow builder: build it (the gateway serves it to the e2e and browser tests), then its
# Vitest tests; a failure here fails the suite before pytest starts.
bash services/gateway/web/build.sh
(cd services/gateway/web && npx --no-install vitest run)

mkdir -p test-artifacts
"$UV" run --frozen pytest "$@"

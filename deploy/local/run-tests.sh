#!/usr/bin/env bash
# The whole test suite, in tiers: static checks, unit, integration, e2e, cluster, browser. The first
# failing tier stops the run; each tier's time is printed at the end either way. Starts the test
# profile's Kafka and PostgreSQL (own ports and data, so a running `make up` system is not touched)
# and stops them again whatever happened. With MILLRACE_KAFKA_BOOTSTRAP and MILLRACE_DATABASE_URL
# already set, uses those instead. With arguments, runs the static checks and then pytest with those
# arguments only (`make test ARGS="tests/unit -k name"`). The cluster tier starts the cluster-test
# profile (three secured Kafka nodes and a PostgreSQL on their own ports) for tests/cluster only, and
# stops it after that tier; CLUSTER_TEST_PORTS="--kafka-port N --pg-port M" moves it.
set -euo pipefail
cd "$(dirname "$0")/../.."
UV=$(command -v uv 2>/dev/null || echo .cache/tools/bin/uv)
WEB=services/gateway/web

started=0
cluster_started=0
timings=()
suite_start=$SECONDS
report() {
  local status=$?
  if [ "$started" = 1 ]; then python3 deploy/local/infra.py stop --profile test >/dev/null || true; fi
  if [ "$cluster_started" = 1 ]; then python3 deploy/local/infra.py stop --profile cluster-test >/dev/null || true; fi
  echo
  echo "Test tiers (seconds):"
  for line in "${timings[@]}"; do echo "  $line"; done
  echo "  total       $((SECONDS - suite_start))"
  if [ "$status" = 0 ]; then echo "make test: passed"; else echo "make test: FAILED (exit $status)"; fi
}
trap report EXIT

# tier NAME COMMAND...: run one tier, timed; a failure stops the suite. (Inside `if`, bash ignores
# `set -e`, so the tier functions below end each step with `|| return`.)
tier() {
  local name=$1 began=$SECONDS
  shift
  echo
  echo "=== tier: $name ==="
  if "$@"; then
    timings+=("$(printf '%-11s %s' "$name" $((SECONDS - began)))")
  else
    local status=$?
    timings+=("$(printf '%-11s %s  FAILED' "$name" $((SECONDS - began)))")
    exit "$status"
  fi
}

static_checks() {
  python3 deploy/checks/web_lock.py || return
  "$UV" run --frozen ruff check . || return
  "$UV" run --frozen ruff format --check . || return
  "$UV" run --frozen lint-imports --no-cache || return # the layers in pyproject.toml [tool.importlinter]
  bash $WEB/build.sh || return # npm ci when the lock changed (tsc needs node_modules), then the build
  (cd $WEB && npx --no-install tsc --noEmit && npx --no-install prettier --check src vite.config.ts) || return
  UV="$UV" bash $WEB/api-types.sh --check || return # the web app's API types match the gateway's OpenAPI
  # The Helm chart: the pinned helm (built once into .cache/tools/bin), lint --strict and template
  # with the default and the production values (tests/unit/test_helm_chart.py checks what renders).
  python3 deploy/local/infra.py install --only helm || return
  python3 deploy/local/helm_chart.py check || return
}

web_unit() {
  "$UV" run --frozen pytest tests/unit -q || return
  (cd $WEB && npx --no-install vitest run) || return
}

pytest_tier() {
  if [ ! -d "$1" ]; then
    echo "(no tests in $1)"
    return 0
  fi
  mkdir -p test-artifacts
  "$UV" run --frozen pytest "$1" -q
}

# The cluster tier: tests/cluster on the cluster-test profile, whose settings (bootstrap list,
# SASL_SSL, SCRAM user, password and CA files, replication 3) replace the test profile's for this
# tier only.
cluster_tier() {
  if [ ! -d tests/cluster ]; then
    echo "(no tests in tests/cluster)"
    return 0
  fi
  local settings status=0
  cluster_started=1
  # shellcheck disable=SC2086 # CLUSTER_TEST_PORTS is a list of options
  settings=$(python3 deploy/local/infra.py start --profile cluster-test ${CLUSTER_TEST_PORTS:-}) || return
  (
    while IFS= read -r line; do
      case "$line" in MILLRACE_*=*) export "${line?}" ;; esac
    done <<<"$settings"
    mkdir -p test-artifacts
    "$UV" run --frozen pytest tests/cluster -q
  ) || status=$?
  python3 deploy/local/infra.py stop --profile cluster-test >/dev/null || true
  cluster_started=0
  return "$status"
}

tier static static_checks

if [ -z "${MILLRACE_KAFKA_BOOTSTRAP:-}" ] || [ -z "${MILLRACE_DATABASE_URL:-}" ]; then
  started=1
  settings=$(python3 deploy/local/infra.py start --profile test)
  while IFS= read -r line; do
    case "$line" in MILLRACE_*=*) export "${line?}" ;; esac
  done <<<"$settings"
fi
# The observability tests run Debian's Prometheus and promtool, the browser tests Debian's Chromium.
python3 deploy/local/infra.py install --only prometheus
python3 deploy/local/infra.py install --only browser

if [ "$#" -gt 0 ]; then
  mkdir -p test-artifacts
  tier pytest "$UV" run --frozen pytest "$@"
  exit 0
fi

tier unit web_unit
tier integration pytest_tier tests/integration
tier e2e pytest_tier tests/e2e
tier cluster cluster_tier
tier browser pytest_tier tests/browser

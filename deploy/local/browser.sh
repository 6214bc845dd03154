#!/usr/bin/env bash
# Debian's Chromium and its driver for the browser tests (tests/browser). Idempotent: does nothing
# when /usr/bin/chromium and /usr/bin/chromedriver are there. Never downloads a browser elsewhere.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "browser tests need Debian's chromium and chromium-driver; as root run: apt-get install -y chromium chromium-driver" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver

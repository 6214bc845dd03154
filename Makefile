# Millrace: `make up` brings the whole system up locally (no Docker); `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
export UV_COMPILE_BYTECODE := 1
UV := $(shell command -v uv 2>/dev/null || echo .cache/tools/bin/uv)

.PHONY: help install web up down status test test-unit logs clean

help:
	@echo "make up      install what is missing, start Kafka, PostgreSQL, every service and Prometheus"
	@echo "             (PROFILE=cluster: three secured Kafka nodes, two instances of every service)"
	@echo "make down    stop everything 'make up' started"
	@echo "make status  what is running"
	@echo "make test    the whole test suite, on its own Kafka and PostgreSQL"

.cache/tools/bin/uv:
	python3 -m venv .cache/tools
	.cache/tools/bin/pip install --quiet uv

install: $(if $(shell command -v uv 2>/dev/null),,.cache/tools/bin/uv)
	$(UV) sync --frozen --python 3.11
	python3 deploy/local/infra.py install
	@$(MAKE) --no-print-directory web

# The workflow builder (services/gateway/web): npm ci and a Vite build, skipped while dist/ is newer
# than the sources; the gateway serves dist/ at /.
web:
	@bash services/gateway/web/build.sh

# PROFILE=cluster: three secured Kafka nodes (SASL_SSL, SCRAM-SHA-512) and two instances of every service.
PROFILE ?= dev

up: install
	python3 deploy/local/infra.py start --profile $(PROFILE) > /dev/null
	python3 deploy/local/services.py start --profile $(PROFILE)
	python3 deploy/local/infra.py prometheus --profile $(PROFILE) > /dev/null
	@python3 deploy/local/services.py addresses --profile $(PROFILE)

down:
	-python3 deploy/local/services.py stop --profile $(PROFILE)
	python3 deploy/local/infra.py stop --profile $(PROFILE)

status:
	@python3 deploy/local/services.py status --profile $(PROFILE)
	@python3 deploy/local/infra.py status --profile $(PROFILE)

# Tiers (static, unit, integration, e2e, cluster, browser), each timed; ARGS="..." runs pytest with those only.
test: install
	@bash deploy/local/run-tests.sh $(ARGS)

test-unit: install
	$(UV) run --frozen pytest tests/unit -q

clean: down
	python3 deploy/local/infra.py reset --profile dev
	python3 deploy/local/infra.py reset --profile test
	python3 deploy/local/infra.py reset --profile cluster
	python3 deploy/local/infra.py reset --profile cluster-test

# Millrace: `make up` brings the whole system up locally (no Docker); `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
export UV_COMPILE_BYTECODE := 1
UV := $(shell command -v uv 2>/dev/null || echo .cache/tools/bin/uv)

.PHONY: help install up down status test test-unit logs clean

help:
	@echo "make up      install what is missing, start Kafka, PostgreSQL and every service"
	@echo "make down    stop everything 'make up' started"
	@echo "make status  what is running"
	@echo "make test    the whole test suite, on its own Kafka and PostgreSQL"

.cache/tools/bin/uv:
	python3 -m venv .cache/tools
	.cache/tools/bin/pip install --quiet uv

install: $(if $(shell command -v uv 2>/dev/null),,.cache/tools/bin/uv)
	$(UV) sync --frozen --python 3.11
	python3 deploy/local/infra.py install

up: install
	python3 deploy/local/infra.py start --profile dev > /dev/null
	python3 deploy/local/services.py start --profile dev
	@echo
	@echo "Millrace is up."
	@echo "  API:        http://127.0.0.1:18080/api/v1   (OpenAPI: http://127.0.0.1:18080/docs)"
	@echo "  UI:         http://127.0.0.1:18080/   (the interactive API until the builder lands)"
	@echo "  Kafka:      127.0.0.1:19092    PostgreSQL: 127.0.0.1:15432 (user and db: millrace)"
	@echo "  Logs:       .data/dev/logs/    Stop with: make down"

down:
	-python3 deploy/local/services.py stop --profile dev
	python3 deploy/local/infra.py stop --profile dev

status:
	@python3 deploy/local/services.py status --profile dev
	@python3 deploy/local/infra.py status --profile dev

test: install
	@bash deploy/local/run-tests.sh

test-unit: install
	$(UV) run --frozen pytest tests/unit -q

clean: down
	python3 deploy/local/infra.py reset --profile dev
	python3 deploy/local/infra.py reset --profile test

# Segin: the two commands are `make run` and `make test`. Nothing but python3 (3.11+) is assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint contracts bench bench-reception clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## Start PostgreSQL, NATS, the four services and the gateway; Ctrl-C stops everything.
run: $(STAMP)
	$(BIN)/segin run

## The whole suite: unit, integration (real PostgreSQL and NATS) and end-to-end tests.
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

## Architecture rules: services import only contracts and kernel, never each other.
lint: $(STAMP)
	$(BIN)/lint-imports --no-cache

## Regenerate the committed JSON Schemas, AsyncAPI document and GraphQL SDL.
contracts: $(STAMP)
	$(BIN)/python -m contracts.generate
	$(BIN)/python -m gateway.export_sdl

## Charter-flight benchmark: N arrivals, C concurrent clients (make bench N=300 C=10).
bench: $(STAMP)
	$(BIN)/python bench/register_flight.py --arrivals $(or $(N),300) --concurrency $(or $(C),10)

## Reception benchmark: a manifest of N rows uploaded, then its people checked in by C agents, first
## each pausing PACE s on average between check-ins (default 1), then back to back (the saturation).
bench-reception: $(STAMP)
	$(BIN)/python bench/manifest_checkin.py --rows $(or $(N),300) --concurrency $(or $(C),10) --pace $(or $(PACE),1)
	$(BIN)/python bench/manifest_checkin.py --rows $(or $(N),300) --concurrency $(or $(C),10) --pace 0 --baseline 0

clean:
	rm -rf $(VENV) .data

## The arrival XLSForm for KoboToolbox / ODK (generated from the contracts).
xlsform: $(STAMP)
	$(BIN)/python -m contracts.xlsform arrival-form.xlsx

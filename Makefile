# The two commands a newcomer needs: `make lab` and `make test`. Both install what they
# need first (scripts/bootstrap.sh is idempotent and takes well under a second when warm).
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: bootstrap lab test test-noisy lint format typecheck pytest lock

bootstrap:
	@bash scripts/bootstrap.sh

lab: bootstrap
	$(VENV)/python -m lab

test: bootstrap lint typecheck pytest

# The whole suite with a noisy neighbour: stress-ng keeps every core busy beside it.
test-noisy: bootstrap
	bash scripts/noisy.sh $(MAKE) lint typecheck pytest

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

format:
	$(VENV)/ruff format .
	$(VENV)/ruff check --fix .

typecheck:
	$(VENV)/mypy

pytest:
	$(VENV)/pytest $(PYTEST_ARGS)

# Recompile the pinned lock after changing a pyproject's dependencies.
lock:
	.tools/bin/uv pip compile requirements/project.in --python-version 3.11 -o requirements/lock.txt

# Two commands are the contract (see README): `make demo` and `make test`.
# Both create .venv when it is missing and install the pinned requirements and the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Nothing downloads at test time; notebooks run their default (smoke) profile. Tests run on two
# pytest workers, one thread each (two threads per worker oversubscribe a 2-core machine).
# nbval keeps each notebook on one worker (--dist loadfile): its cells depend on each other.
TEST_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg PYTHONHASHSEED=0 OMP_NUM_THREADS=1

.PHONY: setup demo test unit notebooks lab clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $(STAMP)

demo: setup
	$(BIN)/refdense demo

test: setup
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 tests
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile --nbval-lax --nbval-current-env \
		--sanitize-with notebooks/sanitize.cfg --durations=0 notebooks

unit: setup
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 tests

notebooks: setup
	$(TEST_ENV) $(BIN)/python -m refdense.course.execute notebooks

lab: setup
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(VENV) runs data/synthetic .pytest_cache

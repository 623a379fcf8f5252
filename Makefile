# The two commands a new operator needs: `make run` and `make test`.
# Both create .venv and install what they need on first use, with the machine's python3
# (CPython 3.11, 3.12 or 3.13; `make PYTHON=python3.12 test` picks another).
# `make test-pythons` runs the suite on every CPython 3.11-3.13 installed (.ci/pythons).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The browser tests drive Debian's chromium (no browser download), with a Bengali font so
# screenshots show the panel's Bengali text.
CHROMIUM := /usr/bin/chromium
BENGALI_FONT := /usr/share/fonts/truetype/lohit-bengali/Lohit-Bengali.ttf
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-pythons clean-venv

run: $(STAMP)
	$(PY) run.py $(ARGS)

test: $(STAMP) $(CHROMIUM) $(BENGALI_FONT)
	$(PY) -m pytest $(PYTEST_ARGS)

test-pythons: $(CHROMIUM) $(BENGALI_FONT)
	.ci/pythons $(PYTEST_ARGS)

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' \
		|| { echo "Diamond Bot needs CPython 3.11, 3.12 or 3.13; $(PYTHON) is $$($(PYTHON) --version 2>&1). Try make PYTHON=python3.12 ..." >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(CHROMIUM) $(BENGALI_FONT):
	@echo "Installing Debian's chromium and a Bengali font for the browser tests"
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-lohit-beng-bengali

clean-venv:
	rm -rf $(VENV) $(VENV)-3.*

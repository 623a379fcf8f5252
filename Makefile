# The two commands a new operator needs: `make run` and `make test`.
# Both create .venv and install what they need on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The browser tests drive Debian's chromium (no browser download), with a Bengali font so
# screenshots show the panel's Bengali text.
CHROMIUM := /usr/bin/chromium
BENGALI_FONT := /usr/share/fonts/truetype/lohit-bengali/Lohit-Bengali.ttf
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test clean-venv

run: $(STAMP)
	$(PY) run.py $(ARGS)

test: $(STAMP) $(CHROMIUM) $(BENGALI_FONT)
	$(PY) -m pytest $(PYTEST_ARGS)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(CHROMIUM) $(BENGALI_FONT):
	@echo "Installing Debian's chromium and a Bengali font for the browser tests"
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-lohit-beng-bengali

clean-venv:
	rm -rf $(VENV)

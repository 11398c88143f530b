# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
SUDO    := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect
export DO_NOT_TRACK := 1

.PHONY: setup ffmpeg demo test lint bench bench-load profile clean

setup: $(STAMP) ffmpeg

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

ffmpeg:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then \
		echo "installing Debian's ffmpeg package"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg; \
	fi

demo: setup
	$(VENV)/bin/vodflow demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -rs

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf .prefect data .pytest_cache

bench: setup
	$(PY) bench/run.py

bench-load: setup
	$(PY) bench/load.py

profile: setup
	$(PY) bench/profile.py

# Headless Chromium and Node (Debian's, only when missing) and the browser tests' npm packages (playwright-core,
# hls.js, pinned in package-lock.json) under node_modules/.
.PHONY: browser
browser:
	@if ! command -v chromium >/dev/null || ! command -v npm >/dev/null; then \
		echo "installing Debian's chromium and nodejs/npm packages"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium nodejs npm; \
	fi
	npm ci --no-audit --no-fund

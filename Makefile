# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
UV      := .tools/bin/uv
UV_VERSION := 0.13.9
SUDO    := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect
export DO_NOT_TRACK := 1
# uv uses the machine's Python 3.11 and never downloads one
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup ffmpeg test-deps test-tools postgresql browser packager player-vendor demo test lint bench bench-pertitle bench-load bench-fixed bench-small bench-stack profile lock clean image

# Every module compiled once here: a machine that sets PYTHONDONTWRITEBYTECODE (CI images, containers) would
# otherwise compile Prefect from source in every process it starts (server, worker, each run, each CLI call).
setup: $(STAMP) ffmpeg
	@$(PY) -m compileall -q vodflow flows tasks blocks

# uv itself, pinned, in a small tool environment of its own (uv sync would remove it from .venv)
$(UV):
	python3 -m venv .tools
	.tools/bin/pip install -q 'uv==$(UV_VERSION)'

# The exact versions of uv.lock (what CI tested), compiled to bytecode at install; `make lock` updates the
# lock after a pyproject change.
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra test --python python3 --compile-bytecode
	touch $(STAMP)

lock: $(UV)
	$(UV) lock --python python3

ffmpeg:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then \
		echo "installing Debian's ffmpeg package"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg; \
	fi

# What only the tests need: a PostgreSQL server (the production-database test), a browser, curl (the seed's
# requests) and procps (ps, pgrep: to look at a hung test's processes; the tests themselves read /proc, see
# tests/procs.py). Under CI=true a missing tool fails the tests that need it instead of skipping them.
test-deps: postgresql browser test-tools image

test-tools:
	@if ! command -v curl >/dev/null || ! command -v pgrep >/dev/null; then \
		echo "installing Debian's curl and procps packages"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq curl procps; \
	fi

postgresql:
	@if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		echo "installing Debian's postgresql package"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; \
	fi

demo: setup
	$(VENV)/bin/vodflow demo

# Two workers (pytest-xdist), a test file each at a time: most of the suite's time is spent waiting on servers,
# ffmpeg and timers, not on the CPU; a file's module fixtures (servers, ladders) are built once. The fault
# table at the end adds up both workers'. Files are handed out in the order tests/conftest.py gives them (the
# long ones first, `LONG_FILES`), not xdist's default of the most tests first, which left the longest files (a
# few slow tests each) to the end. `make test PYTEST_WORKERS=` runs everything in one process.
PYTEST_WORKERS ?= -n 2 --dist loadfile --no-loadscope-reorder

test: setup test-deps
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -rs $(PYTEST_WORKERS) --durations=30

lint: setup
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/lint-imports

clean:
	rm -rf .prefect data .pytest_cache

bench: setup
	$(PY) bench/run.py

# The per-title ladder (`"ladder": "auto"`) against the fixed one on four lavfi sources (VMAF via imageio-ffmpeg)
bench-pertitle: setup
	$(PY) bench/pertitle.py

bench-load: setup test-deps
	$(PY) bench/load.py

profile: setup
	$(PY) bench/profile.py

# The orchestration's fixed cost per job from the Prefect API (a CLI run, a deployment run on a worker)
bench-fixed: setup
	$(PY) bench/fixed_cost.py

# A 1 s 240p job through `vodflow encode` against the local stack, handed to its worker and --here (issue 25)
bench-small: setup
	$(PY) bench/small_job.py

# Issue 25's figures through `vodflow up`: ratio to the hand-written command at 30 s and 60 s, first playable
bench-stack: setup
	$(PY) bench/stack_speed.py

# Headless Chromium and Node (Debian's, each only when missing) and the browser tests' npm packages
# (playwright-core, hls.js, dashjs, and shaka-packager for cenc, pinned in package-lock.json) under node_modules/.
browser: node_modules/.installed
	@if ! command -v chromium >/dev/null; then \
		echo "installing Debian's chromium package"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; \
	fi

# The worker image (Containerfile) as `localhost/vodflow:latest`, built with podman; its base, when no registry
# is reachable, a Debian 12 made here with debootstrap (`localhost/vodflow-base:bookworm`, built once). Chroot
# isolation needs no OCI runtime (this kind of VM has none that starts); behind a TLS-intercepting proxy whose
# CA pip knows (PIP_CERT), the build uses that CA too. docs/containers.md.
IMAGE_BASE  ?= localhost/vodflow-base:bookworm
IMAGE_BUILD ?= --isolation chroot --network host
CA_BUNDLE   := $(or $(PIP_CERT),$(SSL_CERT_FILE))
image:
	@if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then \
		echo "installing Debian's podman and debootstrap packages"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq podman debootstrap; \
	fi
	@if ! $(SUDO) podman image exists $(IMAGE_BASE); then \
		echo "building $(IMAGE_BASE) with debootstrap"; \
		root=$$(mktemp -d) && $(SUDO) debootstrap --variant=minbase bookworm $$root/rootfs http://deb.debian.org/debian >$$root/log 2>&1 \
		&& $(SUDO) tar -C $$root/rootfs -c . | $(SUDO) podman import -q - $(IMAGE_BASE) >/dev/null; \
		status=$$?; $(SUDO) rm -rf $$root; exit $$status; \
	fi
	$(SUDO) podman build -q $(IMAGE_BUILD) --build-arg BASE=$(IMAGE_BASE) \
		$(if $(CA_BUNDLE),-v $(CA_BUNDLE):/run/build-ca.crt:ro --build-arg BUILD_CA_CERT=/run/build-ca.crt) \
		-f Containerfile -t localhost/vodflow:latest .

# Shaka Packager (npm: shaka-packager, pinned in package-lock.json; its static binaries for Linux x64/arm64),
# which makes `cenc` ladders: vodflow finds node_modules/shaka-packager/bin/packager-linux-<arch> of this
# checkout unless VODFLOW_PACKAGER names another (`make test` installs it with the browser tests' packages).
packager: node_modules/.installed
	@node_modules/shaka-packager/bin/packager-linux-$$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/') --version

node_modules/.installed: package-lock.json
	@if ! command -v npm >/dev/null; then \
		echo "installing Debian's nodejs and npm packages"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; \
	fi
	npm ci --no-audit --no-fund
	touch $@

# The watch page's players (`vodflow watch`), copied from the pinned npm packages into the Python package, which
# serves them without node_modules (committed: vodflow/player/vendor/, with their licenses). Rerun after a
# package-lock.json update; tests/unit/test_watch.py checks the copies against package.json's versions.
player-vendor: node_modules/.installed
	sed '/^\/\/# sourceMappingURL=/d' node_modules/hls.js/dist/hls.min.js > vodflow/player/vendor/hls.min.js
	sed '/^\/\/# sourceMappingURL=/d' node_modules/dashjs/dist/modern/umd/dash.all.min.js \
		> vodflow/player/vendor/dash.all.min.js
	cp node_modules/hls.js/LICENSE vodflow/player/vendor/hls.js.LICENSE
	cp node_modules/dashjs/LICENSE.md vodflow/player/vendor/dashjs.LICENSE.md

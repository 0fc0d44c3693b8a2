# Everything a user or CI runs goes through here; see README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO ?= demo-$(shell date +%Y%m%d-%H%M%S).h5
# Libraries Qt needs to draw (offscreen too), present on desktops, often absent on servers;
# Chromium, in which the tests open the HTML report; and the AVR toolchain and simavr, in
# which the tests build and run the reference firmware.
QT_DEBS := libegl1 libgl1 libfontconfig1 libxkbcommon0 libdbus-1-3 libglib2.0-0 fonts-dejavu-core
TEST_DEBS := chromium fonts-liberation gcc-avr avr-libc simavr libsimavr-dev libelf-dev pkg-config
# No screen: the window draws offscreen (the demo then records headless).
HEADLESS := $(if $(DISPLAY)$(WAYLAND_DISPLAY),,--headless)

.PHONY: install system-deps demo test lint bench bench-decode bench-e2e bench-window bench-analysis

$(STAMP): pyproject.toml
	$(MAKE) system-deps
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[gui,test]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@missing=$$(for p in $(QT_DEBS) $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null; then \
	    echo "installing $$missing"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install: $$missing"; fi; \
	fi

demo: $(STAMP)
	$(VENV)/bin/palpation record --simulate $(HEADLESS) --duration 60 --out $(DEMO)

test: $(STAMP)
	$(PY) -m pytest
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

bench: bench-decode bench-e2e bench-window bench-analysis

bench-decode: $(STAMP)
	$(PY) bench/bench_decode.py

bench-e2e: $(STAMP)
	$(PY) bench/bench_e2e.py

bench-window: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) bench/bench_window.py

bench-analysis: $(STAMP)
	$(PY) bench/bench_analysis.py

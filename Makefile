# Everything a user or CI runs goes through here; see README.md.
VENV ?= .venv
# the interpreter the venv is made from (Python >= 3.11), e.g. make PYTHON=python3.12 demo
PYTHON ?= python3
PY := $(VENV)/bin/python
# Two install stamps: the demo needs the package with its window; the tests add their tools.
# `make demo` then `make test` installs the test part on top; a newer pyproject.toml redoes both.
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
DEMO ?= demo-$(shell date +%Y%m%d-%H%M%S).h5
# venv for `python3 -m venv` (Debian/Ubuntu ship it apart from python3).
VENV_DEBS := python3-venv
# Libraries Qt needs to draw (offscreen too), present on desktops, often absent on servers;
# then those its xcb platform plugin links (`ldd` on PyQt6/Qt6/plugins/platforms/libqxcb.so),
# which a stock desktop often lacks (libxcb-cursor0, -icccm4, -keysyms1): without them Qt aborts.
QT_DEBS := libegl1 libgl1 libfontconfig1 libxkbcommon0 libdbus-1-3 libglib2.0-0 fonts-dejavu-core \
	libx11-6 libx11-xcb1 libxcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
	libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 \
	libxcb-util1 libxcb-xfixes0 libxcb-xkb1 libxkbcommon-x11-0
# Test only: Chromium, in which the tests open the HTML report; the AVR toolchain and simavr,
# in which the tests build and run the reference firmware; Xvfb, an X server on which the tests
# open the window on Qt's real xcb platform; PulseAudio, a private sound server with a null sink
# through which the tests play the eyes-free cue and record what it sounds like.
TEST_DEBS := chromium fonts-liberation gcc-avr avr-libc simavr libsimavr-dev libelf-dev pkg-config \
	xvfb pulseaudio pulseaudio-utils
# No screen: the window draws offscreen (the demo then records headless).
HEADLESS := $(if $(DISPLAY)$(WAYLAND_DISPLAY),,--headless)

# $(call apt_install,packages): install those of the Debian packages that are missing, with
# apt-get as root or through sudo; without apt-get, say what to install.
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null; then \
	    echo "installing $$missing"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install: $$missing"; fi; \
	fi
endef

.PHONY: install system-deps demo test lint bench bench-decode bench-e2e bench-window \
	bench-analysis bench-soak bench-class bench-readme

$(DEMO_STAMP): pyproject.toml
	$(call apt_install,$(VENV_DEBS) $(QT_DEBS))
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[gui]'
	touch $@

$(TEST_STAMP): $(DEMO_STAMP)
	$(call apt_install,$(TEST_DEBS))
	$(PY) -m pip install --quiet -e '.[gui,test]'
	touch $@

install: $(TEST_STAMP)

system-deps:
	$(call apt_install,$(VENV_DEBS) $(QT_DEBS) $(TEST_DEBS))

# One shell line: $(DEMO) names a new file each time it is expanded (the date).
demo: $(DEMO_STAMP)
	@out=$(DEMO); cmd="$(VENV)/bin/palpation record --simulate $(HEADLESS) --duration 60 --out $$out"; \
	echo "$$cmd"; $$cmd && printf '%s\n' "" "Next, with what you just recorded:" \
	  "  $(VENV)/bin/palpation review $$out    # step through its holds (needs a screen)" \
	  "  $(VENV)/bin/palpation report $$out --out $${out%.h5}.html    # an HTML report for an instructor" \
	  "  $(VENV)/bin/palpation info $$out    # this summary again"

test: $(TEST_STAMP)
	$(PY) -m pytest
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

lint: $(TEST_STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

# Each benchmark writes bench/results/<name>.json; bench-readme regenerates the README's
# performance section from them. QUICK=1 makes every benchmark a short smoke run.
BENCH_FLAGS := $(if $(QUICK),--quick,)

bench: bench-decode bench-e2e bench-window bench-analysis bench-soak bench-class
	$(MAKE) bench-readme

bench-decode: $(TEST_STAMP)
	$(PY) bench/bench_decode.py $(BENCH_FLAGS)

bench-e2e: $(TEST_STAMP)
	$(PY) bench/bench_e2e.py $(BENCH_FLAGS)

bench-window: $(TEST_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) bench/bench_window.py $(BENCH_FLAGS)

bench-analysis: $(TEST_STAMP)
	$(PY) bench/bench_analysis.py $(BENCH_FLAGS)

# The recorder's resident memory over 10 M samples (the simulator at 100 kHz for 105 s).
bench-soak: $(TEST_STAMP)
	$(PY) bench/bench_soak.py $(BENCH_FLAGS)

# The classroom: 8 stations at 1 kHz (each its own `record --simulate --lsl --station`
# process) and the class view on LSL, then 12, 16, 20 stations until a file loses a sample.
bench-class: $(TEST_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) bench/bench_class.py $(BENCH_FLAGS)

bench-readme: $(TEST_STAMP)
	$(PY) bench/readme.py

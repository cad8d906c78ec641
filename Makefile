# sslax: `make demo` trains SimCLR on Fashion-MNIST and prints the linear-probe
# table; `make test` runs the test suite. Both set everything up on a machine
# with nothing but Python 3.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FASHION_MNIST := /usr/share/datasets/fashion-mnist
WALLPAPERS := plasma-workspace-wallpapers mate-backgrounds
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install data speech photos smoke clean

$(BIN)/sslax: setup.cfg pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: sslax needs Python 3.11 or newer; run make PYTHON=python3.11 ..." >&2; exit 2; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || $(SUDO) apt-get install -y -q python3-venv >/dev/null || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/sslax

data:
	@if [ ! -d $(FASHION_MNIST) ]; then \
	  echo "Installing Debian's dataset-fashion-mnist into $(FASHION_MNIST)"; \
	  ( $(SUDO) apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	    ( $(SUDO) apt-get update -q >/dev/null 2>&1 && \
	      $(SUDO) apt-get install -y -q dataset-fashion-mnist >/dev/null ) ) || \
	  { echo "error: could not install dataset-fashion-mnist with apt-get; install it by hand (apt-get install dataset-fashion-mnist) or put the four IDX files in $(FASHION_MNIST)" >&2; exit 2; }; \
	fi
	@if ! command -v espeak-ng >/dev/null; then \
	  echo "Installing espeak-ng (speech synthesis for the speaker corpus)"; \
	  ( $(SUDO) apt-get install -y -q espeak-ng >/dev/null 2>&1 || \
	    ( $(SUDO) apt-get update -q >/dev/null 2>&1 && \
	      $(SUDO) apt-get install -y -q espeak-ng >/dev/null ) ) || \
	  { echo "error: could not install espeak-ng with apt-get; install it by hand (apt-get install espeak-ng)" >&2; exit 2; }; \
	fi
	@if [ ! -d /usr/share/wallpapers/Path ] || [ ! -d /usr/share/backgrounds/mate/nature ]; then \
	  echo "Installing plasma-workspace-wallpapers and mate-backgrounds (photos for the colourisation corpus)"; \
	  ( $(SUDO) apt-get install -y -q $(WALLPAPERS) >/dev/null 2>&1 || \
	    ( $(SUDO) apt-get update -q >/dev/null 2>&1 && \
	      $(SUDO) apt-get install -y -q $(WALLPAPERS) >/dev/null ) ) || \
	  { echo "error: could not install the wallpapers with apt-get; install them by hand (apt-get install $(WALLPAPERS))" >&2; exit 2; }; \
	fi

test: install data
	$(BIN)/python -m pytest

demo: install data
	$(BIN)/python launch/demo.py --workdir runs/demo

# The espeak-ng speaker corpus for configs/cpc_speech.py (about a minute).
speech: install data
	$(BIN)/sslax data make-speech --out data/espeak_speakers

# The wallpaper photo corpus for configs/colorization.py and split_brain.py.
photos: install data
	$(BIN)/sslax data make-photos --out data/wallpaper_photos

smoke: install data
	bash launch/local_smoke.sh

clean:
	rm -rf $(VENV) runs data *.egg-info

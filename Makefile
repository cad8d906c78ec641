# sslax: `make demo` trains SimCLR on Fashion-MNIST and prints the linear-probe
# table; `make test` runs the test suite. Both set everything up on a machine
# with nothing but Python 3.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FASHION_MNIST := /usr/share/datasets/fashion-mnist
WALLPAPERS := plasma-workspace-wallpapers mate-backgrounds
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# English prose for the word2vec text corpus (sslax/data/text_corpus.py).
TEXT_PACKAGES := dict-gcide wordnet-base sword-text-kjv sword-text-web sword-comm-mhcc \
  sword-comm-tdavid sword-comm-scofield dict-foldoc dict-jargon dict-devil python3-doc \
  perl-doc linux-doc postgresql-doc fortunes

.PHONY: demo test install data speech photos text video smoke results clean

$(BIN)/sslax: setup.cfg pyproject.toml constraints.txt Makefile
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: sslax needs Python 3.11 or newer; run make PYTHON=python3.11 ..." >&2; exit 2; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || $(SUDO) apt-get install -y -q python3-venv >/dev/null || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,video,words]'
	touch $@

install: $(BIN)/sslax

# $(call apt_get,PACKAGES,WHAT FOR): installs Debian packages, or stops with one
# line naming the command to run by hand.
apt_get = echo "Installing $(1) ($(2))"; \
  ( $(SUDO) apt-get install -y -q $(1) >/dev/null 2>&1 || \
    ( $(SUDO) apt-get update -q >/dev/null 2>&1 && \
      $(SUDO) apt-get install -y -q $(1) >/dev/null ) ) || \
  { echo "error: could not install $(1) with apt-get; install it by hand: apt-get install $(1)" >&2; exit 2; }

data:
	@[ -d $(FASHION_MNIST) ] || { $(call apt_get,dataset-fashion-mnist,Fashion-MNIST in $(FASHION_MNIST)); }
	@command -v espeak-ng >/dev/null || { $(call apt_get,espeak-ng,speech synthesis for the speaker corpus); }
	@[ -d /usr/share/wallpapers/Path ] && [ -d /usr/share/backgrounds/mate/nature ] || \
	  { $(call apt_get,$(WALLPAPERS),photographs for the colourisation corpus); }

# In parallel on every core, handed out at most two at a time, longest first
# (tests/conftest.py), then the tests that time signals, kill processes
# or take locks, alone.
test: install data
	$(BIN)/python -m pytest -n auto --dist load --maxschedchunk 2 -m "not serial" --durations=12
	$(BIN)/python -m pytest -m serial

demo: install data
	$(BIN)/python launch/demo.py --workdir runs/demo

# RESULTS.md's Fashion-MNIST tables under one protocol: every row tuned on a
# validation split, then 3 seeds (launch/results.py). Many hours on a 2-core
# CPU, so it runs in parts: RESULTS_MINUTES=170 stops starting runs after that
# long; run it again to go on (finished runs are skipped: those in the
# ledger RESULTS.json, the figures the tables are made from, even without
# their workdirs).
RESULTS_MINUTES ?= 0
results: install data
	$(BIN)/python launch/results.py --workdir runs/protocol --budget-minutes $(RESULTS_MINUTES)

# The espeak-ng speaker corpus for configs/cpc_speech.py (about a minute).
speech: install data
	$(BIN)/sslax data make-speech --out data/espeak_speakers

# The wallpaper photo corpus for configs/colorization.py and split_brain.py.
photos: install data
	$(BIN)/sslax data make-photos --out data/wallpaper_photos

# The synthetic video corpus with masks and keypoints (seconds).
video: install data
	$(BIN)/sslax data make-video --out data/video

# The English text corpus for word2vec, from Debian packages (about a minute
# once they are installed): data/text/{train,heldout}.txt.
text: install
	@[ "$$(dpkg-query -W -f='$${Status}\n' $(TEXT_PACKAGES) 2>/dev/null | grep -c 'ok installed')" = \
	  "$(words $(TEXT_PACKAGES))" ] || { $(call apt_get,$(TEXT_PACKAGES),English text for word2vec); }
	$(BIN)/sslax data make-text --out data/text

smoke: install data
	bash launch/local_smoke.sh

clean:
	rm -rf $(VENV) runs data *.egg-info

# mailsim -- the two commands a newcomer needs: `make lab` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
PORT   ?= 8888

.PHONY: lab test venv bench record-postfix clean student

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "mailsim needs Python 3.11 or newer"'
	@$(PYTHON) -m venv $(VENV) || { echo "python venv is missing: on Debian run 'apt-get install python3-venv'"; exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,ci]'
	@touch $(STAMP)

venv: $(STAMP)

## make lab: install into .venv and open the course in JupyterLab
lab: $(STAMP)
	@root=""; [ "$$(id -u)" = 0 ] && root="--allow-root"; \
	if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] || [ "$$(uname)" = Darwin ]; then \
	  $(BIN)/jupyter lab $$root --ServerApp.root_dir=. notebooks/ ; \
	else \
	  echo "No display: open the URL printed below in your browser."; \
	  $(BIN)/jupyter lab $$root --no-browser --ip=127.0.0.1 --port=$(PORT) --ServerApp.root_dir=. ; \
	fi

## make test: install what the tests need and run all of them, notebooks included
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --doctest-modules tests mailsim
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  PYTHONPATH=tests $(BIN)/python -m pytest -p no:randomly -p nbval_kernel --nbval \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks; \
	fi

## make bench: serve's throughput against an aiosmtpd sink, as a ratio; lab end to end
## (two hops into an mbox, next to real Postfix when installed) and a 1,000-host lab
## (20,000 messages: the full 100,000 take about ten minutes; extrapolated, labelled so)
BIG_MESSAGES ?= 20000
bench: $(STAMP)
	$(BIN)/python -m mailsim.bench
	$(BIN)/python -m mailsim.bench_lab two-hop
	$(BIN)/python -m mailsim.bench_lab big --hosts 1000 --messages $(BIG_MESSAGES) --extrapolate-to 100000

## make record-postfix: record new goldens from Debian's postfix (needs root; restores /etc)
record-postfix: $(STAMP)
	$(BIN)/python tools/record_postfix.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

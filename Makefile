# Two commands do everything on a fresh machine with Python 3.11:
#   make demo   -> creates .venv, installs metevo, runs `metevo demo` into ./metevo_demo
#   make test   -> creates .venv, installs metevo with its test extras, runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.metevo-installed
DEMO_OUT ?= metevo_demo
PYTEST_ARGS ?= -m "not slow" --nbmake tests notebooks

.PHONY: demo test install clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, CPU build: otherwise the segmentation extra pulls a multi-GB CUDA build
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[segmentation,nnunet,viewer,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/metevo demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)

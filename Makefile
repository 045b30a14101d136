# Two commands: `make demo` (prepare a real corpus, train, evaluate) and `make test`.
# The first Python >= 3.12 (jax 0.11 and later need it) among these; or name one: make test PYTHON=/path/to/python3.12
PYTHON ?= $(firstword $(foreach p,python3 python3.12 python3.13 $(wildcard $(HOME)/.pyenv/versions/3.1[2-9]*/bin/python3),\
	$(shell $(p) -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && echo $(p))))
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DATA := data/demo
DEMO_WORKDIR := workdirs/demo

.PHONY: demo test install clean

install: $(VENV)/.installed

# libtpu (the version the `tpu` extra pins) goes into $(VENV)/aot-libtpu, off the import path: only
# `pretrain-jax aot` loads it, so CPU and GPU runs never start the TPU runtime.
$(VENV)/.installed: setup.py
	@test -n "$(PYTHON)" || { echo "pretrain-jax needs Python 3.12 or later (jax 0.12): install one, or run make PYTHON=/path/to/python3.12"; exit 1; }
	$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null || $(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --upgrade --no-deps --target $(VENV)/aot-libtpu "$$($(PY) -c \
	    'import importlib.metadata as m; print(next(r.split(";")[0] for r in m.requires("pretrain-jax") if r.startswith("libtpu")))')"
	touch $@

$(DEMO_DATA)/metadata.json: $(VENV)/.installed
	$(VENV)/bin/data-prep run --config=configs/data/demo.py --config.output_dir=$(DEMO_DATA) --config.overwrite=True

demo: $(DEMO_DATA)/metadata.json
	PYTHON=$(PY) launch/local.sh configs/demo.py $(DEMO_WORKDIR) --config.data.dir=$(DEMO_DATA)
	@echo
	@echo "Checkpoints: $(DEMO_WORKDIR)/checkpoints"
	@echo "TensorBoard: $(VENV)/bin/tensorboard --logdir $(DEMO_WORKDIR)/tensorboard  (then open http://localhost:6006)"

test: $(VENV)/.installed
	$(PY) -m pytest -q

clean:
	rm -rf $(DEMO_DATA) $(DEMO_WORKDIR)

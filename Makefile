# Two commands: `make demo` (prepare a real corpus, train, evaluate) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DATA := data/demo
DEMO_WORKDIR := workdirs/demo

.PHONY: demo test install clean

install: $(VENV)/.installed

# libtpu (the version jax[tpu] pins) goes into $(VENV)/aot-libtpu, off the import path: only
# `pretrain-jax aot` loads it, so CPU and GPU runs never start the TPU runtime.
$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --upgrade --no-deps --target $(VENV)/aot-libtpu "$$($(PY) -c \
	    'import importlib.metadata as m; print(next(r.split(";")[0] for r in m.requires("jax") if r.startswith("libtpu")))')"
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

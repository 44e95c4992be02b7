# mmps: the two entry points set up everything they need on a fresh machine.
#   make demo   install, write the synthetic datasets, run the main job on them (CPU, minutes)
#   make test   install, run the test suite
PYTHON ?= python3
export PYTHON
DATA ?= data/synthetic

.PHONY: install test demo data clean-data

install:
	bash tools/install.sh

data:
	$(PYTHON) tools/misc/make_synthetic_dataset.py prw --out $(DATA)/prw
	$(PYTHON) tools/misc/make_synthetic_dataset.py cuhk-sysu --out $(DATA)/cuhk-sysu

demo: install data
	$(PYTHON) tools/misc/dataset_summary.py configs/_base_/datasets/synthetic_prw.py --data-root $(DATA)/prw
	$(PYTHON) tools/misc/dataset_summary.py configs/_base_/datasets/synthetic_cuhk-sysu.py --data-root $(DATA)/cuhk-sysu

test: install
	$(PYTHON) -m pytest tests

clean-data:
	rm -rf $(DATA)

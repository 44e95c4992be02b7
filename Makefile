# mmps: the two entry points set up everything they need on a fresh machine.
#   make demo   install, write the synthetic datasets if missing, train DICL on them (CPU,
#               ~10 min), evaluate (metric table), draw search results (pictures)
#   make test   install, run the test suite
#   make web-demo  (after make demo) the demo model in the browser: a person search page
#               over the synthetic PRW frames, on http://127.0.0.1:7860
PYTHON ?= python3
export PYTHON
DATA ?= data/synthetic
CONFIG ?= configs/dicl_synthetic_prw.py
WORK ?= work_dirs/demo
CKPT = $(WORK)/epoch_50.pth
# the demo's query: a line of query_info.txt (pid x y w h frame)
DEMO_QUERY ?= 5
# The same kernels on every x86-64 CPU with AVX2: the seeded CPU run otherwise takes
# AVX-512 kernels on some machines and AVX2 ones on others (oneDNN convolutions, ATen
# reductions, MKL / OpenBLAS), whose last-bit differences the discrete clustering
# amplifies into different pseudo labels and a different model (see configs/dicl/README.md,
# "Run-to-run spread"). Set REPRO_ENV= to use the fastest kernels instead.
REPRO_ENV ?= ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2 \
    OPENBLAS_CORETYPE=Haswell

# the web demo's page (tools/demo/web_demo.py)
WEB_HOST ?= 127.0.0.1
WEB_PORT ?= 7860
# the optional extras of the web demo and of its browser test (pinned in pyproject.toml)
INSTALL_DEMO = $(PYTHON) -m pip install -c requirements/constraints.txt -e '.[tests,demo,browser]'

.PHONY: install install-demo test test-fast demo web-demo data clean-data

install:
	bash tools/install.sh

install-demo:
	$(INSTALL_DEMO)

# the synthetic sets are written once (deterministic, seed 0)
$(DATA)/prw/query_info.txt:
	$(PYTHON) tools/misc/make_synthetic_dataset.py prw --out $(DATA)/prw

$(DATA)/cuhk-sysu/annotation/pool.mat:
	$(PYTHON) tools/misc/make_synthetic_dataset.py cuhk-sysu --out $(DATA)/cuhk-sysu

data: $(DATA)/prw/query_info.txt $(DATA)/cuhk-sysu/annotation/pool.mat

# the main job: train (evaluates at the end), test with pictures of ranked results,
# then the search demo on one query of the synthetic PRW set (all its frames as the gallery)
demo: install $(DATA)/prw/query_info.txt
	$(REPRO_ENV) $(PYTHON) tools/train.py $(CONFIG) --work-dir $(WORK) \
	    --cfg-options train_dataloader.dataset.data_root=$(DATA)/prw \
	    val_dataloader.dataset.data_root=$(DATA)/prw test_dataloader.dataset.data_root=$(DATA)/prw
	$(REPRO_ENV) $(PYTHON) tools/test.py $(CONFIG) $(CKPT) --work-dir $(WORK) \
	    --out $(WORK)/results.npz --show-dir $(WORK)/search_results --show-queries 10 \
	    --cfg-options test_dataloader.dataset.data_root=$(DATA)/prw
	query=$$(awk -v n=$(DEMO_QUERY) 'NR == n {sub(/\r$$/, ""); printf "--query $(DATA)/prw/frames/%s.jpg --query-box %g %g %g %g", \
	    $$6, $$2, $$3, $$2 + $$4, $$3 + $$5}' $(DATA)/prw/query_info.txt) && \
	$(REPRO_ENV) $(PYTHON) tools/demo/search_demo.py --config $(CONFIG) --checkpoint $(CKPT) $$query \
	    --gallery '$(DATA)/prw/frames/*.jpg' \
	    --topk 8 --out $(WORK)/search_demo.jpg
	@echo "main job done: metrics in $(WORK)/*/*.log (over seeds 0-2 DICL gives the spread" \
	    "in configs/dicl/README.md, not one number), pictures $(WORK)/search_demo.jpg" \
	    "(the query and its top-8, green = true match, red = not), $(WORK)/search_results/," \
	    "training curves $(WORK)/training_curves.png"

# the browser test (tests/test_tools/test_web_demo.py) also needs Debian's chromium and
# chromium-driver (.ci/run installs them); without them it is skipped
test: install
	$(INSTALL_DEMO)
	$(PYTHON) -m pytest tests

# serve the model trained by `make demo` over the synthetic PRW frames (Ctrl+C stops it);
# the gallery index is built on the first visit and kept in $(WORK)/web_demo_index.npz
web-demo: install-demo $(DATA)/prw/query_info.txt
	@test -f $(CKPT) || { echo "no trained model $(CKPT): run 'make demo' first"; exit 1; }
	$(REPRO_ENV) $(PYTHON) tools/demo/web_demo.py $(CONFIG) $(CKPT) \
	    --gallery $(DATA)/prw/frames --index $(WORK)/web_demo_index.npz \
	    --host $(WEB_HOST) --port $(WEB_PORT)

# the quick loop while developing (CI runs everything: make test)
test-fast:
	$(PYTHON) -m pytest tests -m "not slow"

clean-data:
	rm -rf $(DATA)

# funade: two commands for a newcomer: `make demo` and `make test`.
.PHONY: setup test demo bench lint unit integration clean

setup:
	@bash scripts/setup.sh

lint: setup
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

unit: setup
	.venv/bin/python -m pytest -m unit -q

integration: setup
	.venv/bin/python -m pytest -m integration

test: lint
	.venv/bin/python -m pytest

demo: setup
	@bash scripts/demo.sh

bench: setup
	.venv/bin/python bench/rollout.py
	.venv/bin/python bench/zero_downtime.py
	.venv/bin/python bench/promote.py
	.venv/bin/python bench/lifecycle.py
	.venv/bin/python bench/scan.py
	.venv/bin/python bench/canary.py
	.venv/bin/python bench/gitops.py
	.venv/bin/python bench/autoscale.py

clean:
	-.venv/bin/funade down --delete-workloads

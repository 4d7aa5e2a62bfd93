"""The lab: experiments on a real language model that make each mechanism visible.

`catalog` lists the experiments' declarations (names, questions, parameters, predictable
quantities) and imports without torch; `runner.run_experiment` runs one and needs the
`lab` extra (`pip install -e '.[lab]'`). This package imports nothing itself, so the
engine can read the catalog without pulling in the runner (which records through `api`).
"""

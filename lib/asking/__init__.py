"""asking: documents and a question in, a checked answer out.

Owns the prompt (`prompt.py`: the pinned system instructions, the documents as rendered,
the Qwen3 chat template as Ollama renders it, and `PromptBuild`, the one object a
question's budget, request and num_keep derive from; documents are rendered and counted
once per process), the budget (`budget.py`), the citations and their verification
(`citations.py`), whether the server reused its cache (`reuse.py`), and answering
(`answering.py`: `ask_stream`, `ask`, `Answer` with its top-level `status`).
When a selection does not fit one call: its parts (`parts.py`), packing
(`packing.py`), the plan (`plan.py`), evidence (`evidence.py`) and the run of several calls
(`several_calls.py`); see docs/readme/plan.md. Measuring a server: the probe (`haystack.py`,
`probe_grid.py`, `probe.py`) and the evaluation (`scoring.py`, `evaluation.py`).

May import: the shared ground, lib.reading (tokens, passage IDs), lib.servers (the
protocol and the backends) and lib.library (the store). Never lib.output or lib.cli.
"""

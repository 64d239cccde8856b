"""Review tables: the same columns put to every document, one whole-document call each, every
cell cited and verified (issue 11).

    columns = [Column("Outcome", "What was the outcome?", "options", ("Allowed", "Dismissed"))]
    table = create_table(store, "Matter 42", documents, columns)     # stored (lib/library/reviews.py)
    run_table(store, table.id, settings, concurrency=4, progress=show, cancel=stop)
    table = load_table(store, table.id)                               # cells typed, verified, flagged
    answer = ask_table(store, table.id, "Which judgments upheld the limitation defence?", settings)

Modules: `values` (typed values), `columns` (columns, ready sets), `request` (the prompt and
the JSON schema), `reply` (reading the model's reply), `cells` (a cell and its states),
`row` (one document, one call), `parts` (documents longer than one call: the seam),
`table` (a stored table and the work left), `runner` (the loop), `job` (the "review" job kind:
a table's run stored, resumed and stopped like every long job), `table_question` (ask the table).
"""

from . import job  # noqa: F401  registers the "review" job kind
from .cells import NOT_STATED, Cell
from .columns import PRESETS, Column, apply_types, parse_column, preset
from .row import Row, review_row
from .runner import Progress, RunReport, concurrency_for, process_document, run_table
from .table import ReviewTable, add_columns, create_table, edit_column, load_table, retry_cells, table_for
from .table_question import ask_table

__all__ = [
    "NOT_STATED", "Cell", "PRESETS", "Column", "apply_types", "parse_column", "preset", "Row", "review_row",
    "Progress", "RunReport", "concurrency_for", "process_document", "run_table", "ReviewTable", "add_columns",
    "create_table", "edit_column", "load_table", "retry_cells", "table_for", "ask_table",
]

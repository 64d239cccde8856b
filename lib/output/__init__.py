"""output: what a person reads or takes away.

Owns the exports (`exports.py`: Markdown, Word with footnoted citations, CSV), the PDF
page images with the quote highlighted (`page_image.py`), the app's pure view logic
(`presenting.py`: citation markers, budget rows and hints, safe Markdown), what became of a
question (`outcome.py`: state, model, times, cache), advice pointing at the app's fields
(`advice.py`), and turn records (`turns.py`: a question's turn as plain data and saving it to
the store).

May import: the shared ground, lib.reading, lib.servers, lib.library and lib.asking.
Never lib.cli, and never streamlit: the app's Streamlit helpers are in ui/.
"""

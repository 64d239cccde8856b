"""ui: the web app's Streamlit helpers, one module per concern.

`state` (session state and routing), `resources` (the shared store, settings and backend),
`server` (the server check and sidebar status), `documents` (the library's documents, cached
whole documents), `answers` (rendering cited answers), `page_images`, `exports`, `asking` (the
budget, the stream and the job that saves a turn), `budget` (the Ask page's budget panel),
`model_setup` (the Settings page's check panel); for the library at any size: `document_list` (filters, one page with ticks, the pager),
`library_list` (the Library's list and its actions), `collections`, `uploads`, `jobs` (long
work: progress, cancel, resume, the sidebar indicator), `reader` (one document, search) and
`choosing` (what the Ask page reads).

The page scripts in pages/ and app.py import these; these import lib. lib never imports ui.
"""

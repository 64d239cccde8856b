"""ui: the web app's Streamlit helpers, one module per concern.

`state` (session state and routing), `resources` (the shared store, settings and backend),
`server` (the server check and sidebar status), `documents` (uploads and the library),
`answers` (rendering cited answers), `page_images`, `exports`, `asking` (the budget, the
stream and the job that saves a turn), `budget` (the Ask page's budget panel), `model_setup` (the
Settings page's check panel).

The page scripts in pages/ and app.py import these; these import lib. lib never imports ui.
"""

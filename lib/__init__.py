"""Folio's product code: everything but the Streamlit pages. Never imports streamlit."""

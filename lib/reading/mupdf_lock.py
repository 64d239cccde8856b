"""One lock around every use of PyMuPDF.

MuPDF does not support being used from several threads at once, and Streamlit runs each
browser tab's script in its own thread: two tabs reading PDFs together must take turns.
"""

import threading

MUPDF_LOCK = threading.RLock()

"""Figures to bytes: a multi-page PDF (matplotlib's PdfPages) or a PNG of one page (Agg).

matplotlib does not promise thread safety (its font and text caches are shared), and the API
serves requests on a thread pool: figures are built and saved holding ``DRAWING``."""

import io
import threading
from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")  # no display, whatever the environment says

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from app.exports.reports.chart import PNG_DPI

DRAWING = threading.Lock()
# No creation date: the same data gives the same file.
PDF_METADATA = {"Creator": "Vigil", "Producer": "Vigil (matplotlib)", "CreationDate": None}


def pdf_bytes(figures: Iterable[Figure], title: str) -> bytes:
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={**PDF_METADATA, "Title": title}) as pdf:
        for figure in figures:
            pdf.savefig(figure)
    return buffer.getvalue()


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": "Vigil"})
    return buffer.getvalue()

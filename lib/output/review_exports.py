"""A review table as files a reviewer takes away (bytes out, no disk I/O, no streamlit).

    table_xlsx(table) -> bytes     Excel: "Table" (typed cells: dates as dates, numbers as numbers with
                                   their unit in the number format, yes/no as booleans; cells that need
                                   review filled yellow), "Answers" (one line per cell: answer, status,
                                   why it needs review, the reviewer's edit beside the model's value),
                                   "Citations" (document, column, page, passage ID, quote, status)
    table_csv(table) -> bytes      one row per document: per column its value, status and citations
    table_docx(table) -> bytes     a Word memo: the table, every citation a real footnote

Written with openpyxl (see README, Dependencies): real typed cells and a file Excel and
LibreOffice open without a repair prompt. Text a spreadsheet would run as a formula
('=HYPERLINK(...)' in a quote) is stored as text; characters XML forbids are dropped.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from ..asking.review.table import ReviewTable
from .exports import _DocxWriter, _defuse_formula, source_text, xml_safe
from .review_view import CellView, RowView, table_rows

MAX_CELL_TEXT = 32_000
"""Excel keeps at most 32,767 characters in a cell and warns about longer ones."""
REVIEW_FILL = "FFF2CC"
PROBLEM_FILL = "F8CBAD"
HEADER_FILL = "D9E1F2"
_PREFIX_UNITS = ("$", "¥", "£", "€", "US$")


def _safe(text: Any) -> str:
    text = xml_safe(str(text if text is not None else ""))
    return text if len(text) <= MAX_CELL_TEXT else text[: MAX_CELL_TEXT - 1] + "…"


def _put(sheet, row: int, column: int, value: Any):
    """Write a value; text always as text (never a formula), dates and numbers as themselves."""
    cell = sheet.cell(row=row, column=column)
    if isinstance(value, str):
        cell.value = _safe(value)
        cell.data_type = "s"  # openpyxl would otherwise store '=...' as a formula
    else:
        cell.value = value
    return cell


def number_format(value: float | int, unit: str | None) -> str:
    """'#,##0 "EUR"', '"$"#,##0.00', '#,##0.00 "%"': the unit shown, the cell still a number."""
    base = "#,##0" if isinstance(value, int) or float(value).is_integer() else "#,##0.00"
    if not unit:
        return base
    unit = unit.replace('"', "").replace("\\", "")
    if unit in _PREFIX_UNITS:
        return f'"{unit}"{base}'
    return f'{base}" {unit}"'


def typed_cell_value(view: CellView) -> tuple[Any, str | None]:
    """(what goes in the spreadsheet cell, its number format) for a shown cell."""
    if view.status in ("failed", "refused", "unreadable", "pending") and not view.edited:
        return f"({view.status_label})", None
    if view.status == "not_stated" and not view.edited:
        return "Not stated", None
    value = view.value
    if value is None:
        return view.text, None
    if view.type == "date" and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value), "yyyy-mm-dd"
        except ValueError:
            return value, None
    if view.type == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value, number_format(value, view.unit)
    if isinstance(value, bool):
        return value, None
    if isinstance(value, list):
        return "\n".join(str(v) for v in value), None
    return str(value), None


def table_xlsx(table: ReviewTable) -> bytes:
    """The .xlsx workbook (see the module docstring)."""
    from openpyxl import Workbook

    rows = table_rows(table)
    book = Workbook()
    book.properties.creator = "Folio"
    book.properties.title = _safe(table.title)[:200]
    _table_sheet(book.active, table, rows)
    _answers_sheet(book.create_sheet("Answers"), rows)
    _citations_sheet(book.create_sheet("Citations"), rows)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _header(sheet, titles: list[str], widths: list[int]) -> None:
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    for number, (title, width) in enumerate(zip(titles, widths), start=1):
        cell = _put(sheet, 1, number, title)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
        sheet.column_dimensions[get_column_letter(number)].width = width
    sheet.freeze_panes = "B2"


def _finish(sheet) -> None:
    if sheet.max_row > 1:
        sheet.auto_filter.ref = sheet.dimensions


def _table_sheet(sheet, table: ReviewTable, rows: list[RowView]) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    sheet.title = "Table"
    _header(sheet, ["Document"] + [c.title for c in table.columns], [36] + [24] * len(table.columns))
    wrap = Alignment(wrap_text=True, vertical="top")
    for r, row in enumerate(rows, start=2):
        _put(sheet, r, 1, row.document).alignment = wrap
        for c, view in enumerate(row.cells, start=2):
            value, fmt = typed_cell_value(view)
            cell = _put(sheet, r, c, value)
            cell.alignment = wrap
            if fmt:
                cell.number_format = fmt
            if view.status in ("failed", "refused", "unreadable") and not view.edited:
                cell.fill = PatternFill("solid", fgColor=PROBLEM_FILL)
            elif view.needs_review:
                cell.fill = PatternFill("solid", fgColor=REVIEW_FILL)
            if view.status == "not_stated" and not view.edited:
                cell.font = Font(italic=True, color="808080")
    _finish(sheet)


ANSWER_COLUMNS = ["Document", "Column", "Value", "Unit", "Answer", "Status", "Needs review", "Why", "Checked",
                  "Edited by reviewer", "Model's value", "Parts read", "Citations", "Verified"]


def _answers_sheet(sheet, rows: list[RowView]) -> None:
    _header(sheet, ANSWER_COLUMNS, [30, 22, 24, 10, 50, 14, 12, 40, 10, 12, 24, 10, 10, 10])
    line = 2
    for row in rows:
        for view in row.cells:
            value, fmt = typed_cell_value(view)
            values = [row.document, view.title, value, view.unit or "", view.answer, view.status_label,
                      view.needs_review, "; ".join(view.review or ([view.reason] if view.reason else [])),
                      view.checked, view.edited, view.model_text if view.edited else "", view.parts,
                      len(view.citations), sum(1 for c in view.citations if c.get("status") == "verified")]
            for column, item in enumerate(values, start=1):
                cell = _put(sheet, line, column, item)
                if column == 3 and fmt:
                    cell.number_format = fmt
            line += 1
    _finish(sheet)


CITATION_COLUMNS = ["Document", "Column", "Page", "Printed page", "Passage ID", "Quote", "Status", "Note"]


def _citations_sheet(sheet, rows: list[RowView]) -> None:
    _header(sheet, CITATION_COLUMNS, [30, 22, 8, 12, 12, 70, 12, 40])
    line = 2
    for row in rows:
        for view in row.cells:
            for citation in view.citations:
                page = citation.get("page")
                values = [citation.get("document") or row.document, view.title, page if isinstance(page, int) else "",
                          citation.get("page_label") or "", citation.get("id") or "", citation.get("quote") or "",
                          citation.get("status") or "", citation.get("reason") or ""]
                for column, item in enumerate(values, start=1):
                    _put(sheet, line, column, item)
                line += 1
    _finish(sheet)


# --------------------------------------------------------------------------------- CSV


def _citations_text(view: CellView) -> str:
    parts = []
    for c in view.citations:
        page = f" p. {c['page']}" if c.get("page") is not None else ""
        quote = f' "{c["quote"]}"' if c.get("quote") else ""
        parts.append(f"[{c.get('id')}]{page}{quote} ({c.get('status')})")
    return " | ".join(parts)


def table_csv(table: ReviewTable) -> bytes:
    """One row per document: per column its shown value, status and citations (UTF-8 with BOM)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["document"]
    for column in table.columns:
        header += [column.title, f"{column.title} · status", f"{column.title} · citations"]
    writer.writerow([_defuse_formula(h) for h in header])
    for row in table_rows(table):
        line = [row.document]
        for view in row.cells:
            status = view.status_label + (" · needs review" if view.needs_review else "")
            line += [view.text if view.status != "pending" else "", status, _citations_text(view)]
        writer.writerow([_defuse_formula(xml_safe(v)) for v in line])
    return buffer.getvalue().encode("utf-8-sig")


# -------------------------------------------------------------------------------- Word


def table_docx(table: ReviewTable) -> bytes:
    """A Word memo: title, the columns and their questions, the table; citations as footnotes."""
    writer = _DocxWriter(title=table.title)
    document = writer.document
    rows = table_rows(table)
    if len(table.columns) > 3:
        _landscape(document)
    writer.heading(table.title, 0)
    writer.paragraph(f"Review of {len(rows)} document(s) over {len(table.columns)} column(s). Every value cites the "
                     "passage it rests on (footnotes: document, page, passage, quote and whether Folio verified it).")
    for column in table.columns:
        writer.paragraph(f"{column.title} ({column.type_label}): {column.question}", style="List Bullet")
    grid = document.add_table(rows=1, cols=len(table.columns) + 1)
    grid.style = "Table Grid"
    for cell, title in zip(grid.rows[0].cells, ["Document"] + [c.title for c in table.columns]):
        cell.paragraphs[0].add_run(xml_safe(title)).bold = True
    for row in rows:
        cells = grid.add_row().cells
        cells[0].paragraphs[0].add_run(xml_safe(row.document))
        for cell, view in zip(cells[1:], row.cells):
            _memo_cell(writer, cell.paragraphs[0], view)
    review = sum(1 for row in rows for view in row.cells if view.needs_review)
    if review:
        writer.paragraph(f"⚠ marks the {review} value(s) without a verified citation or not read in their type: "
                         "check them against the document.")
    return writer.save()


def _memo_cell(writer, paragraph, view: CellView) -> None:
    if view.status in ("failed", "refused", "unreadable", "pending") and not view.edited:
        paragraph.add_run(xml_safe(f"({view.status_label})")).italic = True
        return
    paragraph.add_run(xml_safe(view.text or view.answer))
    if view.edited:
        paragraph.add_run(" (edited)").italic = True
    for citation in view.citations:
        writer.footnotes.reference(paragraph, writer.footnotes.add(source_text(citation)))
    if view.needs_review:
        paragraph.add_run(" ⚠")


def _landscape(document) -> None:
    from docx.enum.section import WD_ORIENT

    section = document.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = section.page_height, section.page_width

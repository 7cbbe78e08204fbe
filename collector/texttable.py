"""A plain-text table that keeps to a width: columns padded to their widest cell and, when
the whole is wider than the width, the last columns narrowed first with their cells wrapped
at word boundaries (a single word longer than its column is cut with an ellipsis), so that
a terminal never wraps a line in the middle of a word.  Standard library only."""

from __future__ import annotations

import textwrap
from itertools import zip_longest
from typing import Callable, List, Optional, Sequence

GAP = "  "
MIN_LAST = 20  # the last column (a title) keeps at least this much when others can give way
MIN_OTHER = 8

# style(cell) -> what is printed for it (e.g. the cell coloured); applied to body rows, the
# padding kept outside it
CellStyle = Callable[[str], str]


def column_widths(rows: Sequence[Sequence[str]], width: Optional[int]) -> List[int]:
    """Each column's width: its widest cell when the table fits; else the first columns
    keep what most of their cells need (a rare long cell wraps) and the last takes the
    rest, taking from the others (right to left) while it has less than MIN_LAST."""
    natural = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    budget = None if width is None else width - len(GAP) * (len(natural) - 1)
    if budget is None or sum(natural) <= budget:
        return natural
    widths = [_typical(rows, i) for i in range(len(natural) - 1)] + [0]
    widths[-1] = min(natural[-1], budget - sum(widths[:-1]))
    for index in range(len(widths) - 2, -1, -1):
        short = min(natural[-1], MIN_LAST) - widths[-1]
        if short <= 0:
            break
        given = min(short, widths[index] - MIN_OTHER)
        if given > 0:
            widths[index] -= given
            widths[-1] += given
    widths[-1] = max(1, widths[-1])
    return widths


def _typical(rows: Sequence[Sequence[str]], column: int) -> int:
    """The width 90% of a column's cells fit in (never below its heading's)."""
    lengths = sorted(len(row[column]) for row in rows[1:]) or [0]
    return max(len(rows[0][column]), lengths[min(len(lengths) - 1, int(len(lengths) * 0.9))])


def wrap_cell(text: str, width: int) -> List[str]:
    if len(text) <= width:
        return [text]
    lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]
    return [line if len(line) <= width else line[:max(1, width - 1)] + "…" for line in lines]


def render(rows: Sequence[Sequence[str]], width: Optional[int] = None, styles: Sequence[Optional[CellStyle]] = (),
           header: bool = True) -> List[str]:
    """The table's lines (the first row is the header when `header`); `styles[i]` styles
    column i's cells of the body rows."""
    if not rows:
        return []
    widths = column_widths(rows, width)
    last = len(widths) - 1
    lines = []
    for number, row in enumerate(rows):
        wrapped = [wrap_cell(cell, widths[i]) if width is not None else [cell] for i, cell in enumerate(row)]
        for line_number, parts in enumerate(zip_longest(*wrapped, fillvalue="")):
            cells = []
            for i, part in enumerate(parts):
                padded = part if i == last else part.ljust(widths[i])
                style = styles[i] if i < len(styles) else None
                if style and part and line_number == 0 and not (header and number == 0):
                    padded = style(part) + padded[len(part):]
                cells.append(padded)
            lines.append(GAP.join(cells).rstrip())
    return lines

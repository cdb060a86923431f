"""Streaming readers for CSV and JSON lines: constant memory, physical line
numbers, and a per-line error for bytes that are not UTF-8 (never a traceback).

A reader yields ``(line, fields, error)``: ``fields`` is a list of strings in
the order of :attr:`Reader.columns` (``None`` for a value a JSON record left
out), ``error`` a message when the row could not be read at all.
"""

from __future__ import annotations

import csv
import decimal
import io
import json
import os
from collections.abc import Iterable, Iterator
from typing import IO, Any

from crmcore.errors import ValidationError

FORMATS = ("csv", "jsonl")


def guess_format(path: str) -> str:
    lower = path.lower()
    return "jsonl" if lower.endswith((".jsonl", ".ndjson", ".json")) else "csv"


class Reader:
    """One input file read once, front to back."""

    def __init__(
        self, path: str, fmt: str | None = None, *, stream: IO[bytes] | None = None
    ) -> None:
        self.path = path
        self.fmt = fmt or guess_format(path)
        if self.fmt not in FORMATS:
            raise ValidationError(f"format {self.fmt!r}: expected one of {FORMATS}")
        if stream is None:
            try:
                stream = open(path, "rb")  # noqa: SIM115 (closed by close())
            except OSError as e:
                raise ValidationError(f"{path}: cannot open: {e.strerror}") from None
            try:
                self.size = os.fstat(stream.fileno()).st_size
            except (OSError, io.UnsupportedOperation):
                self.size = 0
        else:
            self.size = 0
        self.stream = stream
        self.bytes_read = 0
        self._bad: list[tuple[int, str]] = []  # (line, message) of undecodable lines
        self._scalar: set[str] = set()  # JSON-lines columns that refuse objects and arrays
        self._line = 0
        self.columns: list[str] = []
        self.header_line = 0

    def close(self) -> None:
        self.stream.close()

    # -- lines -------------------------------------------------------------------
    def _lines(self) -> Iterator[str]:
        for raw in self.stream:
            self._line += 1
            self.bytes_read += len(raw)
            if self._line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                self._bad.append(
                    (
                        self._line,
                        f"not valid UTF-8 (byte {e.start + 1} of the line: "
                        f"0x{raw[e.start]:02x}); save the file as UTF-8",
                    )
                )
                yield raw.decode("utf-8", "replace")

    # -- CSV -----------------------------------------------------------------------
    def read_header(
        self, allowed: set[str], required: tuple[str, ...], *, scalar: Iterable[str] = ()
    ) -> None:
        """Read and check the header (CSV) or fix the columns (JSON lines).

        In JSON lines, the ``scalar`` columns take only a string, number,
        boolean or null: an object or array there is refused, not stored as text."""
        if self.fmt == "jsonl":
            self.columns = sorted(allowed, key=lambda c: (c not in required, c))
            self._allowed = allowed
            self._scalar = set(scalar)
            return
        self._csv = csv.reader(self._lines())
        header: list[str] | None = None
        try:
            for row in self._csv:
                if row:
                    header = row
                    break
        except csv.Error as e:
            raise ValidationError(f"line {self._csv.line_num}: header: {e}") from None
        self.header_line = self._csv.line_num
        if self._bad:
            raise ValidationError(f"line {self._bad[0][0]}: header: {self._bad[0][1]}")
        if header is None:
            raise ValidationError(f"{self.path}: empty file (expected a header line)")
        cols = [h.strip().lower() for h in header]
        unknown = [c for c in cols if c not in allowed]
        if unknown:
            raise ValidationError(
                f"line {self.header_line}: unknown column(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        if dupes:
            raise ValidationError(f"line {self.header_line}: column(s) {dupes} given twice")
        missing = [c for c in required if c not in cols]
        if missing:
            raise ValidationError(
                f"line {self.header_line}: missing column(s) {', '.join(map(repr, missing))}; "
                f"the header has: {', '.join(cols)}"
            )
        self.columns = cols

    def rows(self) -> Iterator[tuple[int, list[Any], str | None]]:
        if self.fmt == "jsonl":
            yield from self._json_rows()
        else:
            yield from self._csv_rows()

    def _csv_rows(self) -> Iterator[tuple[int, list[Any], str | None]]:
        reader = self._csv
        width = len(self.columns)
        bad = self._bad
        prev = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                start, prev = prev + 1, reader.line_num
                bad.clear()
                yield start, [], f"unreadable CSV: {e}"
                continue
            start, prev = prev + 1, reader.line_num
            if bad:
                msg = "; ".join(m for n, m in bad if n <= prev)
                del bad[:]
                yield start, row, msg
                continue
            if len(row) != width:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                yield (
                    start,
                    row,
                    f"expected {width} fields ({','.join(self.columns)}), got {len(row)}",
                )
                continue
            yield start, row, None

    def _json_rows(self) -> Iterator[tuple[int, list[Any], str | None]]:
        cols = self.columns
        allowed = self._allowed
        for text in self._lines():
            line = self._line
            if self._bad:
                msg = self._bad[0][1]
                self._bad.clear()
                yield line, [text.rstrip("\r\n")], msg
                continue
            if not text.strip():
                continue
            try:
                obj = json.loads(text, parse_float=decimal.Decimal, parse_constant=_no_constant)
            except ValueError as e:
                yield line, [text.rstrip("\r\n")], f"not valid JSON: {e}"
                continue
            if not isinstance(obj, dict):
                yield line, [text.rstrip("\r\n")], "expected a JSON object"
                continue
            unknown = [k for k in obj if k not in allowed]
            if unknown:
                yield (
                    line,
                    [text.rstrip("\r\n")],
                    (
                        f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(allowed))}"
                    ),
                )
                continue
            nested = [k for k in cols if k in self._scalar and isinstance(obj.get(k), dict | list)]
            if nested:
                kind = "an object" if isinstance(obj[nested[0]], dict) else "an array"
                yield (
                    line,
                    [text.rstrip("\r\n")],
                    f"{nested[0]}: expected text or a number, got {kind}",
                )
                continue
            yield line, [_jtext(obj.get(c)) for c in cols], None


def _no_constant(name: str) -> Any:
    """JSON lines hold JSON: ``NaN`` and ``Infinity`` are not numbers there."""
    raise ValueError(f"{name} is not a JSON value")


def _jtext(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return json.dumps(value, ensure_ascii=False)

"""Redaction for ``crm.customers.forget``: the forgotten customer's name, phone and
e-mail are replaced wherever a copy of them was written.

The core erases the columns it knows belong to the customer. Copies are
elsewhere too: a reminder text a plugin wrote ("call Wu Fang ..."), a ticket
note, another customer's interaction, a plugin table's free text, an audit
value, the outbox log. This module finds them set-based: for every text and
JSON column of every core and plugin table (minus staff, the derived tables and
identifiers), one ``UPDATE`` per column replaces each match of the customer's
patterns with ``[erased]``. A phone matches with any separators between its
digits (``139 0000 1111``, ``139-0000-1111``, ``+86 139...``), a name without
regard to case. The replaced values are not audited (that would copy them
again); the forget's own audit row counts what was redacted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import JSON, String, Table, Text, and_, cast, func, or_, update

from crmcore.files import rewrite_private_lines
from crmcore.schema import audit_log
from crmcore.services.tables import is_derived

ERASED = "[erased]"
SQLITE_FUNCTION = "crm_redact"

# Tables whose text is never a copy of a customer's data, or handled apart.
NOT_SWEPT = {
    "staff",  # the staff's own names
    "customers",  # the customer's own row is erased apart; another may share the name
    "contact_points",  # another customer's own phone (a shared line) stays theirs
    "transactions",
    "alembic_version",
    "audit_log",  # whole values redacted, see audit_condition
}
MIN_NEEDLE = 3  # shorter names would erase unrelated text


class Needles:
    """The forgotten customer's personal data as patterns, with a literal
    fragment each (for a cheap ``LIKE`` before the pattern)."""

    def __init__(
        self,
        names: Iterable[str | None],
        phones: Iterable[str | None],
        emails: Iterable[str | None],
    ) -> None:
        self.patterns: list[tuple[str, str]] = []  # (regex, literal that every match holds)
        texts = {t.strip() for t in (*names, *emails) if t and _long_enough(t.strip())}
        for text in sorted(texts):
            self.patterns.append((re.escape(text), text))
            escaped = json.dumps(text)[1:-1]  # how a JSON document may hold it
            if escaped != text:
                self.patterns.append((re.escape(escaped), escaped))
        for phone in sorted({p for p in phones if p}):
            digits = re.sub(r"\D", "", phone)
            if len(digits) >= 7:
                national = _national(digits)
                # any separators between the digits: 139 0000 1111, 139-0000-1111, (139) ...
                pattern = "[-. ()/]*".join(re.escape(d) for d in national)
                self.patterns.append((pattern, national[-4:]))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def redact(self, text: str) -> str:
        for pattern, _ in self.patterns:
            text = re.sub(pattern, ERASED, text, flags=re.IGNORECASE)
        return text

    def match(self, text: str) -> bool:
        return any(re.search(p, text, flags=re.IGNORECASE) for p, _ in self.patterns)


def _long_enough(text: str) -> bool:
    """Three characters, or two of a script where a name may be that short (吴芳)."""
    return len(text) >= MIN_NEEDLE or (len(text) == 2 and not text.isascii())


def _national(digits: str) -> str:
    """The national significant number of a normalised phone (+CC...): what every
    written form of it contains. Country codes are 1-3 digits; the number's own
    length tells them apart for the common 10/11-digit national plans."""
    for cc_len in (2, 1, 3):
        rest = digits[cc_len:]
        if len(rest) in (10, 11):
            return rest
    return digits


def _text_columns(table: Table) -> Iterable[tuple[Any, bool]]:
    """(column, is_json) of every text or JSON column that is not part of the key."""
    for col in table.c:
        if col.primary_key:
            continue
        if isinstance(col.type, JSON):
            yield col, True
        elif isinstance(col.type, String | Text):
            yield col, False


def _register_sqlite(conn: Any) -> None:
    def redact(value: Any, pattern: str) -> Any:
        if value is None:
            return None
        return re.sub(pattern, ERASED, str(value), flags=re.IGNORECASE)

    conn.connection.driver_connection.create_function(
        SQLITE_FUNCTION, 2, redact, deterministic=True
    )


def _replaced(conn: Any, expr: Any, pattern: str) -> Any:
    if conn.dialect.name == "sqlite":
        return getattr(func, SQLITE_FUNCTION)(expr, pattern)
    return func.regexp_replace(expr, pattern, ERASED, "gi")


def _matches(conn: Any, expr: Any, pattern: str, fragment: str) -> Any:
    """A row holds the pattern: the literal fragment first (cheap), then the pattern."""
    like = expr.ilike(f"%{_like_escape(fragment)}%", escape="\\")
    if conn.dialect.name == "sqlite":
        return and_(like, getattr(func, SQLITE_FUNCTION)(expr, pattern) != expr)
    return and_(like, expr.op("~*")(pattern))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sweep(conn: Any, tables: Iterable[Table], needles: Needles) -> dict[str, int]:
    """Replace the needles in every text and JSON column of ``tables`` (one
    ``UPDATE`` per column); the number of rows changed per table."""
    if not needles:
        return {}
    if conn.dialect.name == "sqlite":
        _register_sqlite(conn)
    changed: dict[str, int] = {}
    for table in tables:
        if table.name in NOT_SWEPT or is_derived(table):  # derived: figures and labels
            continue
        for col, is_json in _text_columns(table):
            as_text = cast(col, Text) if is_json else col
            new = as_text
            for pattern, _ in needles.patterns:
                new = _replaced(conn, new, pattern)
            if is_json and conn.dialect.name != "sqlite":
                new = cast(new, col.type)
            found = or_(*(_matches(conn, as_text, p, f) for p, f in needles.patterns))
            n = conn.execute(update(table).where(found).values({col.name: new})).rowcount
            if n:
                changed[table.name] = changed.get(table.name, 0) + n
    return changed


def audit_condition(conn: Any, needles: Needles) -> Any:
    """The audit rows whose recorded values hold the customer's data (for
    :meth:`crmcore.db.DB.audit_redact`); None when there is nothing to look for."""
    if not needles:
        return None
    if conn.dialect.name == "sqlite":
        _register_sqlite(conn)
    return or_(
        *(
            _matches(conn, cast(col, Text), p, f)
            for col in (audit_log.c.before, audit_log.c.after)
            for p, f in needles.patterns
        )
    )


def redact_log_file(path: str, needles: Needles, message_ids: set[int]) -> int:
    """Rewrite the outbox log: the customer's messages lose recipient and body,
    and any other line loses the needles. Returns the number of lines changed."""

    def change(line: str) -> str:
        try:
            record = json.loads(line)
        except ValueError:
            return needles.redact(line) if needles else line
        if isinstance(record, dict) and record.get("id") in message_ids:
            record["to"] = None
            record["body"] = ERASED
            return json.dumps(record, ensure_ascii=False)
        if needles and needles.match(line):
            return json.dumps(_redact_value(record, needles), ensure_ascii=False)
        return line

    return rewrite_private_lines(path, change)


def _redact_value(value: Any, needles: Needles) -> Any:
    if isinstance(value, str):
        return needles.redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, needles) for v in value]
    return value

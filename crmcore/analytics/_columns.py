"""Columnar fetches and lazy per-customer results for the analytics.

Fetching a million rows through a DBAPI cursor builds a million tuples and
several million Python objects, which costs as much as the database's own scan.
``fetch_columns`` instead asks the database to concatenate each column into one
text value (``group_concat`` / ``string_agg``, computed in C) and parses it with
numpy: one row crosses into Python per query, whatever the size of the base.

The per-customer results are returned as read-only ``Mapping``/``Sequence``
views over those arrays: a lookup builds its dict when asked, so returning the
result of a million-customer run does not build a million dicts up front.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

STRING_SEP = "\x1f"  # ASCII unit separator: never part of a label value


def fetch_columns(
    crm: Any,
    dialect: str,
    select_sql: str,
    kinds: str,
    params: Sequence[Any] = (),
    *,
    query: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]] | None = None,
) -> list[Any]:
    """Run ``select_sql`` (``?`` placeholders, one output column per letter of
    ``kinds``: ``i`` int64, ``s`` str, ``t`` timestamp as int64 microseconds
    since 1970, parsed by numpy) and return one numpy array per column, in
    the same row order. Two optimistic kinds for text columns give ``None``
    instead of an array when a value does not fit: ``n`` (every value the
    decimal text of an int64) and ``c`` (every value one ASCII character; a
    uint8 array of the characters). NULLs must be coalesced away by the
    caller: the concatenating aggregates skip them. ``query`` runs the SQL
    (default: ``crm.db.driver_query``; ``SideReads`` passes its own)."""
    import numpy as np

    names = [f"c{i}" for i in range(len(kinds))]
    aggs = []
    for name, kind in zip(names, kinds, strict=True):
        sep = {"s": STRING_SEP, "c": ""}.get(kind, ",")
        if dialect == "sqlite" or kind in "tnc":  # SQLite stores timestamps as ISO text
            concat = "group_concat" if dialect == "sqlite" else "string_agg"
            value = name if dialect == "sqlite" else f"CAST({name} AS TEXT)"
            aggs.append(f"{concat}({value}, '{sep}')")
        else:
            aggs.append(f"string_agg(CAST({name} AS TEXT), '{sep}')")
    sql = f"WITH q({', '.join(names)}) AS ({select_sql}) SELECT COUNT(*), {', '.join(aggs)} FROM q"
    (row,) = (query or crm.db.driver_query)(sql, params)  # one row: the count and the texts
    n = int(row[0] or 0)
    out: list[Any] = []
    for text, kind in zip(row[1:], kinds, strict=True):
        if n == 0:
            empty = {"s": object, "c": np.uint8}.get(kind, np.int64)
            out.append(np.zeros(0, dtype=empty))
        elif kind == "n":
            try:
                with warnings.catch_warnings():  # older numpy only warns on trailing text
                    warnings.simplefilter("error", DeprecationWarning)
                    arr = np.fromstring(text, dtype=np.int64, sep=",")
            except (ValueError, DeprecationWarning):
                arr = None
            out.append(arr if arr is not None and len(arr) == n else None)
        elif kind == "c":
            raw = text.encode("utf-8")
            out.append(np.frombuffer(raw, dtype=np.uint8) if len(raw) == n else None)
        elif kind == "i":
            arr = np.fromstring(text, dtype=np.int64, sep=",")  # text mode: C parser
            if len(arr) != n:
                raise RuntimeError(f"column fetch: expected {n} values, parsed {len(arr)}")
            out.append(arr)
        elif kind == "t":
            arr = iso_micros(text, n)
            if len(arr) != n:
                raise RuntimeError(f"column fetch: expected {n} values, parsed {len(arr)}")
            out.append(arr)
        else:
            arr = np.array(text.split(STRING_SEP), dtype=object)
            if len(arr) != n:
                raise RuntimeError(f"column fetch: expected {n} values, parsed {len(arr)}")
            out.append(arr)
    return out


def iso_micros(text: str, n: int) -> Any:
    """Microseconds since 1970 of ``n`` comma-separated ISO timestamps, parsed
    by numpy's C parser (faster than SQLite's own date functions). When every
    value has one width (as stored: with or without the fraction) the bytes
    are read in place as fixed-width strings, without a Python string each."""
    import numpy as np

    raw = text.encode("utf-8")
    for width in (26, 19):  # 'YYYY-MM-DD HH:MM:SS.ffffff', 'YYYY-MM-DD HH:MM:SS'
        if len(raw) == n * (width + 1) - 1:
            fixed = np.ndarray((n,), dtype=f"S{width}", buffer=raw, strides=(width + 1,))
            try:
                return fixed.astype("datetime64[us]").view(np.int64)
            except ValueError:
                break  # not that layout after all
    return np.array(text.split(","), dtype="datetime64[us]").view(np.int64)


class ArrayMapping(Mapping[int, Any]):
    """Read-only ``{customer id: value}`` over sorted id and value arrays.

    With one value array a lookup returns its element; with several named
    arrays it returns a new dict of them. ``dict(view)`` materialises it."""

    def __init__(self, ids: Any, values: Any = None, **fields: Any) -> None:
        import numpy as np

        order: Any  # a slice when already sorted, else an index array
        if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):  # already sorted (the usual case)
            order = slice(None)
        else:
            order = np.argsort(ids, kind="stable")
        self._ids = ids[order]
        self._single = values[order] if values is not None else None
        self._fields = {k: v[order] for k, v in fields.items()}
        self._py: Any = None

    def _index(self, key: Any) -> int:
        import numpy as np

        if not isinstance(key, int | np.integer):
            raise KeyError(key)
        i = int(np.searchsorted(self._ids, key))
        if i >= len(self._ids) or self._ids[i] != key:
            raise KeyError(key)
        return i

    def __getitem__(self, key: Any) -> Any:
        i = self._index(key)
        if self._single is not None:
            return self._single[i].item() if hasattr(self._single[i], "item") else self._single[i]
        return {k: v[i].item() if hasattr(v[i], "item") else v[i] for k, v in self._fields.items()}

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids.tolist())

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        try:
            self._index(key)
        except KeyError:
            return False
        return True

    def items(self) -> Any:
        """Fast bulk iteration (one ``tolist`` per column)."""
        ids = self._ids.tolist()
        if self._single is not None:
            return zip(ids, self._single.tolist(), strict=True)
        cols = {k: v.tolist() for k, v in self._fields.items()}
        keys = list(cols)
        return (
            (cid, dict(zip(keys, vals, strict=True)))
            for cid, *vals in zip(ids, *cols.values(), strict=True)
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    # unhashable, as a mapping that compares by content must be; typeshed types
    # object.__hash__ as a method, so mypy does not know the None idiom
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ArrayMapping({len(self)} customers)"


class ArrayRows(Sequence[dict[str, Any]]):
    """A list of dicts over equally long column arrays: ``rows[i]`` builds the
    i-th dict when asked; the first full iteration builds them all once and
    keeps them, so callers may annotate the dicts as they would a list's."""

    def __init__(self, convert: Mapping[str, Any] | None = None, **columns: Any) -> None:
        self._cols = columns
        self._convert = dict(convert or {})
        self._n = len(next(iter(columns.values()))) if columns else 0
        self._built: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return self._n

    def _row(self, i: int) -> dict[str, Any]:
        out = {}
        for k, col in self._cols.items():
            v = col[i]
            v = v.item() if hasattr(v, "item") else v
            out[k] = self._convert[k](v) if k in self._convert else v
        return out

    def __getitem__(self, i: Any) -> Any:
        if self._built is not None:
            return self._built[i]
        if isinstance(i, slice):
            return [self._row(j) for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._row(i)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._built is None:
            cols = {k: v.tolist() for k, v in self._cols.items()}
            keys = list(cols)
            built = [
                dict(zip(keys, vals, strict=True)) for vals in zip(*cols.values(), strict=True)
            ]
            for k, f in self._convert.items():
                for row in built:
                    row[k] = f(row[k])
            self._built = built
        return iter(self._built)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    # unhashable, as a sequence that compares by content must be (see ArrayMapping)
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ArrayRows({self._n} rows)"

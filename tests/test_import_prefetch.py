"""The import's reader thread: order kept, errors raised, early stops clean."""

from __future__ import annotations

import threading

import pytest

from crmcore.importer._common import prefetch


def test_items_arrive_in_order_from_another_thread():
    threads = set()

    def items():
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    assert list(prefetch(items())) == list(range(50))
    assert threads == {"crm-import-reader"}


def test_an_error_in_the_reader_is_raised_to_the_consumer_after_the_good_items():
    def items():
        yield 1
        yield 2
        raise ValueError("line 3: bad bytes")

    got = []
    with pytest.raises(ValueError, match="line 3"):
        for i in prefetch(items()):
            got.append(i)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_reader():
    produced = []

    def items():
        for i in range(10_000):
            produced.append(i)
            yield i

    gen = prefetch(items(), depth=1)
    assert next(gen) == 0
    gen.close()  # the consumer gives up (e.g. a database error in a batch)
    assert len(produced) < 10  # the reader stopped within a batch or two
    assert not any(t.name == "crm-import-reader" for t in threading.enumerate())

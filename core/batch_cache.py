"""Values read once for a batch of work (a drain's batch of telephony events) instead of once
for each item in it: a tenant's post-call apps and CRM connections, say.

Outside a `batch_cache()` block, `cached` computes every time. Inside, a value is computed once
and kept until the block ends: the batch is one transaction, so it sees what that transaction
would have read at its start, no staler.

A value asked for with `kept=True` (a tenant's settings) is also kept from one batch to the
next inside a `kept_between_batches(seconds)` block (a drain's run), but never longer than
`seconds` after it was read: a change of settings reaches a running drain within that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_values: ContextVar[dict[Hashable, object] | None] = ContextVar("batch_cache", default=None)
# Values kept between batches: key -> (value, monotonic time it was read), and for how long.
_kept: ContextVar[tuple[dict[Hashable, tuple[object, float]], float] | None] = ContextVar(
    "kept_between_batches", default=None
)


@contextmanager
def batch_cache() -> Iterator[None]:
    token = _values.set({})
    try:
        yield
    finally:
        _values.reset(token)


@contextmanager
def kept_between_batches(seconds: float) -> Iterator[None]:
    """Keep `kept=True` values from one batch to the next, each at most `seconds` after it
    was read."""
    token = _kept.set(({}, seconds))
    try:
        yield
    finally:
        _kept.reset(token)


def cached(key: Hashable, compute: Callable[[], T], *, kept: bool = False) -> T:
    """compute(), remembered under `key` until the current batch ends (if there is one);
    `kept`: until the `kept_between_batches` block ends or its time is up, if there is one."""
    values = _values.get()
    if values is None:
        return compute()
    if key not in values:
        kept_values = _kept.get() if kept else None
        if kept_values is None:
            values[key] = compute()
        else:
            store, seconds = kept_values
            value, read_at = store.get(key, (None, -seconds))
            if time.monotonic() - read_at >= seconds:
                value, read_at = compute(), time.monotonic()
                store[key] = (value, read_at)
            values[key] = value
    return values[key]  # type: ignore[return-value]

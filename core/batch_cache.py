"""Values read once for a batch of work (a drain's batch of telephony events) instead of once
for each item in it: a tenant's post-call apps and CRM connections, say.

Outside a `batch_cache()` block, `cached` computes every time. Inside, a value is computed once
and kept until the block ends: the batch is one transaction, so it sees what that transaction
would have read at its start, no staler.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_values: ContextVar[dict[Hashable, object] | None] = ContextVar("batch_cache", default=None)


@contextmanager
def batch_cache() -> Iterator[None]:
    token = _values.set({})
    try:
        yield
    finally:
        _values.reset(token)


def cached(key: Hashable, compute: Callable[[], T]) -> T:
    """compute(), remembered under `key` until the current batch ends (if there is one)."""
    values = _values.get()
    if values is None:
        return compute()
    if key not in values:
        values[key] = compute()
    return values[key]  # type: ignore[return-value]

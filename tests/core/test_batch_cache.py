"""Values read once a batch, and a tenant's settings kept between a drain's batches for a while."""

import time

from core import batch_cache


class Reads:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        self.count += 1
        return self.count


def test_outside_a_batch_every_read_computes():
    read = Reads()
    assert [batch_cache.cached("k", read), batch_cache.cached("k", read)] == [1, 2]


def test_a_batch_computes_each_value_once():
    read = Reads()
    with batch_cache.batch_cache():
        assert [batch_cache.cached("k", read), batch_cache.cached("k", read)] == [1, 1]
    with batch_cache.batch_cache():
        assert batch_cache.cached("k", read) == 2


def test_a_kept_value_outlives_its_batch_but_not_its_time():
    read = Reads()
    with batch_cache.kept_between_batches(0.2):
        with batch_cache.batch_cache():
            assert batch_cache.cached("k", read, kept=True) == 1
        with batch_cache.batch_cache():
            assert batch_cache.cached("k", read, kept=True) == 1
            assert batch_cache.cached("other", read) == 2  # not kept: read once a batch
        with batch_cache.batch_cache():
            assert batch_cache.cached("other", read) == 3
        time.sleep(0.25)
        with batch_cache.batch_cache():
            assert batch_cache.cached("k", read, kept=True) == 4


def test_without_a_kept_block_a_kept_value_is_read_once_a_batch():
    read = Reads()
    for expected in (1, 2):
        with batch_cache.batch_cache():
            assert batch_cache.cached("k", read, kept=True) == expected

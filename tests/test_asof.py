"""The as-of primitive: ranges hold exactly the key's rows strictly before t."""

import numpy as np
import pytest

from features.asof import AsOfIndex, combine_keys, smoothed_rate


@pytest.fixture
def idx() -> AsOfIndex:
    # key 5 at ts 10, 20, 20; key 7 at ts 5, 30 (rows given out of order on purpose)
    return AsOfIndex(np.array([7, 5, 5, 7, 5]), np.array([30, 20, 10, 5, 20]))


@pytest.mark.parametrize(
    ("key", "t", "count"),
    [
        (5, 10, 0),  # the row at exactly t is excluded
        (5, 11, 1),
        (5, 20, 1),  # both rows at ts 20 are ties with t: excluded
        (5, 21, 3),
        (7, 31, 2),
        (9, 100, 0),  # unseen key
        (5, 0, 0),
    ],
)
def test_counts_strictly_before(idx, key, t, count):
    start, end = idx.locate(np.array([key]), np.array([t]))
    assert (end - start)[0] == count


def test_sums_and_last_ts(idx):
    y = np.array([0, 1, 1, 1, 0])  # per original row: (7,30)=0 (5,20)=1 (5,10)=1 (7,5)=1 (5,20)=0
    start, end = idx.locate(np.array([5, 5, 7, 7]), np.array([21, 15, 31, 6]))
    np.testing.assert_array_equal(idx.sum("y", y, start, end), [2.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(idx.last_ts(start, end), [20.0, 10.0, 30.0, 5.0])


def test_inclusive_range_includes_ties(idx):
    start, end = idx.locate(np.array([5]), np.array([20]), inclusive=True)
    assert (end - start)[0] == 3


def test_empty_index():
    idx = AsOfIndex(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    start, end = idx.locate(np.array([1, 2]), np.array([5, 6]))
    np.testing.assert_array_equal(end - start, [0, 0])


def test_combine_keys_is_injective_for_int32_ids():
    a = np.array([0, 1, 2**31 - 1, 0])
    b = np.array([2**31 - 1, 0, 2**31 - 1, 0])
    keys = combine_keys(a, b)
    assert len(np.unique(keys)) == 4
    assert (keys >= 0).all()


def test_smoothed_rate():
    # (3 + 10 * 0.5) / (4 + 10) = 8 / 14
    np.testing.assert_allclose(smoothed_rate(np.array([3.0]), np.array([4.0]), 0.5, 10.0), [8 / 14], rtol=1e-6)

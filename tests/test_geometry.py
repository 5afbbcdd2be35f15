"""Tests for saltvol.geometry: build_grid and the Geometry dataclass."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saltvol.errors import DuplicateTraceError, GeometryError
from saltvol.geometry import MAX_CELLS_PER_TRACE, Geometry, build_grid


def test_inline_sorted_full_grid() -> None:
    il = np.repeat([10, 11, 12], 4)
    xl = np.tile([5, 6, 7, 8], 3)
    ilines, xlines, ti = build_grid(il, xl)
    np.testing.assert_array_equal(ilines, [10, 11, 12])
    np.testing.assert_array_equal(xlines, [5, 6, 7, 8])
    np.testing.assert_array_equal(ti, np.arange(12).reshape(3, 4))
    assert ti.dtype == np.int64


def test_crossline_sorted_grid() -> None:
    il = np.tile([10, 11, 12], 4)
    xl = np.repeat([5, 6, 7, 8], 3)
    _, _, ti = build_grid(il, xl)
    np.testing.assert_array_equal(ti, np.arange(12).reshape(4, 3).T)


def test_gaps_and_shuffled_order() -> None:
    il = np.array([3, 1, 2, 1, 3])
    xl = np.array([20, 10, 30, 30, 10])
    ilines, xlines, ti = build_grid(il, xl)
    np.testing.assert_array_equal(ilines, [1, 2, 3])
    np.testing.assert_array_equal(xlines, [10, 20, 30])
    np.testing.assert_array_equal(ti, [[1, -1, 3], [-1, -1, 2], [4, 0, -1]])


def test_single_trace_and_single_line() -> None:
    _, _, ti = build_grid(np.array([7]), np.array([9]))
    np.testing.assert_array_equal(ti, [[0]])
    ilines, xlines, ti = build_grid(np.zeros(5, int), np.array([5, 4, 3, 2, 1]))
    assert ti.shape == (1, 5)
    np.testing.assert_array_equal(ti[0], [4, 3, 2, 1, 0])


def test_duplicates_are_named_and_counted() -> None:
    il = np.array([1, 1, 2, 2, 1, 2, 2])
    xl = np.array([1, 2, 1, 2, 2, 1, 1])
    with pytest.raises(DuplicateTraceError, match=r"^2 \(inline, crossline\) pairs.*3 extra.*\(1, 2\), \(2, 1\)"):
        build_grid(il, xl)


def test_many_duplicates_are_truncated() -> None:
    il = np.tile(np.arange(10), 2)
    xl = np.tile(np.arange(10), 2)
    with pytest.raises(DuplicateTraceError, match=r"^10 .*\.\.\.; check the byte locations"):
        build_grid(il, xl)


def test_all_equal_is_an_error() -> None:
    with pytest.raises(DuplicateTraceError, match="hold no line numbers"):
        build_grid(np.zeros(6, int), np.zeros(6, int))


def test_sparse_grid_is_an_error() -> None:
    n = 3 * MAX_CELLS_PER_TRACE
    with pytest.raises(GeometryError, match="probably not inline/crossline numbers") as info:
        build_grid(np.arange(n), np.arange(n) * 7)  # a diagonal: n traces, n*n cells
    assert not isinstance(info.value, DuplicateTraceError)


def test_bad_inputs() -> None:
    with pytest.raises(GeometryError, match="no traces"):
        build_grid(np.array([], int), np.array([], int))
    with pytest.raises(GeometryError, match="one inline and one crossline"):
        build_grid(np.array([1, 2]), np.array([1]))


def _geometry(ti: np.ndarray, kind: str = "3d") -> Geometry:
    shape = ti.shape
    return Geometry(
        kind=kind,  # type: ignore[arg-type]
        ilines=np.arange(shape[0]),
        xlines=np.arange(shape[1]),
        trace_index=ti,
        samples=np.arange(5, dtype=float),
        sample_unit="ms",
        sample_format=5,
        iline_byte=189,
        xline_byte=193,
        cdp_x=np.zeros(shape),
        cdp_y=np.zeros(shape),
        sorting="iline",
        n_traces=int((ti >= 0).sum()),
        path="/tmp/x.sgy",
        text_header="",
        byte_locations_autodetected=False,
    )


def test_geometry_properties_and_pickle() -> None:
    g = _geometry(np.array([[0, 1, -1], [2, -1, 3]]))
    assert g.shape == (2, 3)
    assert g.n_dead == 2 and g.n_samples == 5
    np.testing.assert_array_equal(g.live, [[True, True, False], [True, False, True]])
    g2 = pickle.loads(pickle.dumps(g))
    np.testing.assert_array_equal(g2.trace_index, g.trace_index)
    with pytest.raises(AttributeError):
        g.kind = "2d"  # type: ignore[misc]


def test_geometry_checks_shapes() -> None:
    with pytest.raises(GeometryError, match="shape"):
        Geometry(**{**_geometry(np.zeros((2, 3), int)).__dict__, "cdp_x": np.zeros((3, 2))})
    with pytest.raises(GeometryError, match="exactly one inline"):
        _geometry(np.zeros((2, 3), int), kind="2d")


# --------------------------------------------------------------------------- #
# property: the grid is exact, or the error is the right one
# --------------------------------------------------------------------------- #

# mostly dense line numbers, sometimes far-flung ones (which make sparse grids)
line = st.one_of(st.integers(-3, 12), st.integers(-(10**6), 10**6))
pairs = st.lists(st.tuples(line, st.integers(100, 112)), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(pairs=pairs, extra=st.lists(st.integers(0, 59), max_size=3), seed=st.integers(0, 2**32 - 1))
def test_build_grid_is_exact_or_raises(pairs: list[tuple[int, int]], extra: list[int], seed: int) -> None:
    # add some duplicates on purpose, then shuffle the traces
    pairs = pairs + [pairs[k % len(pairs)] for k in extra]
    order = np.random.default_rng(seed).permutation(len(pairs))
    il = np.array([pairs[k][0] for k in order])
    xl = np.array([pairs[k][1] for k in order])
    n = il.size
    has_duplicates = len(set(zip(il.tolist(), xl.tolist()))) < n
    n_cells = np.unique(il).size * np.unique(xl).size

    if has_duplicates:
        with pytest.raises(DuplicateTraceError):
            build_grid(il, xl)
        return
    if n_cells > MAX_CELLS_PER_TRACE * n:
        with pytest.raises(GeometryError):
            build_grid(il, xl)
        return

    ilines, xlines, ti = build_grid(il, xl)
    np.testing.assert_array_equal(ilines, np.unique(il))
    np.testing.assert_array_equal(xlines, np.unique(xl))
    expected = np.full((ilines.size, xlines.size), -1)
    for trace, (a, b) in enumerate(zip(il, xl)):
        expected[np.searchsorted(ilines, a), np.searchsorted(xlines, b)] = trace
    np.testing.assert_array_equal(ti, expected)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 400))
def test_diagonals_are_rejected_once_sparse(n: int) -> None:
    """A diagonal (every trace its own inline and crossline) has n*n cells for n traces."""
    values = np.arange(n)
    if n > MAX_CELLS_PER_TRACE:
        with pytest.raises(GeometryError):
            build_grid(values, values)
    else:
        _, _, ti = build_grid(values, values)
        np.testing.assert_array_equal(np.diag(ti), values)

"""Activation patterns: exact enumeration against independent counts, sampling, I/O."""
import itertools

import numpy as np
import pytest

from bmdsl.derive.arrangement import count_cells_bruteforce, enumerate_patterns
from bmdsl.derive.patterns import (PatternCountError, PatternSet, arrangement_bound,
                                   masks_from_gates, sample_gates, sample_patterns, unique_masks)


def zaslavsky_count(M):
    """Cells of a central arrangement in R^p, p <= 3, from its flats (Zaslavsky).

    rank 0: 1; rank 1: 2; rank 2: 2H; rank 3: 2 (1 + sum over lines (m_L - 1)), m_L the
    number of planes through line L.  Written independently of bmdsl (cross products).
    """
    norms = np.linalg.norm(M, axis=1)
    U = M[norms > 1e-12] / norms[norms > 1e-12, None]
    planes = []
    for u in U:                                    # distinct hyperplanes
        if not any(min(np.linalg.norm(u - v), np.linalg.norm(u + v)) < 1e-9 for v in planes):
            planes.append(u)
    H = len(planes)
    r = np.linalg.matrix_rank(np.array(planes), tol=1e-9) if H else 0
    if r <= 1:
        return 1 if r == 0 else 2
    if r == 2:
        return 2 * H
    lines = []                                     # distinct lines, with planes through them
    for a, b in itertools.combinations(planes, 2):
        t = np.cross(a, b)
        t /= np.linalg.norm(t)
        if not any(min(np.linalg.norm(t - s), np.linalg.norm(t + s)) < 1e-7 for s in lines):
            lines.append(t)
    return 2 * (1 + sum(sum(abs(p @ t) < 1e-9 for p in planes) - 1 for t in lines))


def whitney_count(M):
    """Cells of a central arrangement in any dimension by Whitney's formula:
    sum over subsets S of the (non-zero) rows of (-1)^(|S| - rank S).  Repeated rows
    cancel out of the sum, so it needs no de-duplication.  Exponential: tiny N only.
    """
    M = M[np.linalg.norm(M, axis=1) > 0]
    return sum((-1) ** (k - (np.linalg.matrix_rank(M[list(S)], tol=1e-9) if k else 0))
               for k in range(len(M) + 1) for S in itertools.combinations(range(len(M)), k))


def lp_cells(M):
    """All masks by testing every 0/1 vector with an LP (tiny N only): max margin > 0."""
    import cvxpy as cp
    N, p = M.shape
    zero = np.linalg.norm(M, axis=1) == 0
    found = set()
    for bits in itertools.product([0, 1], repeat=N):
        b = np.array(bits)
        if np.any(b[zero] == 0):                   # a zero row is always active
            continue
        w, t = cp.Variable(p), cp.Variable()
        s = (2 * b - 1)[~zero]
        cons = [cp.multiply(s, M[~zero] @ w) >= t, w <= 1, w >= -1, t <= 1]
        val = cp.Problem(cp.Maximize(t), cons).solve(solver="CLARABEL")
        if val is not None and val > 1e-6:
            found.add(bits)
    return found


def degenerate(kind, rng):
    base = rng.standard_normal((6, 3))
    if kind == "zero_rows":
        return np.vstack([base, np.zeros((3, 3))])
    if kind == "duplicates":
        return np.vstack([base, base[:3], -2.5 * base[1:3]])
    if kind == "rank2_in_R3":
        return rng.standard_normal((9, 2)) @ rng.standard_normal((2, 3))
    if kind == "rank1":
        return rng.standard_normal((7, 1)) @ rng.standard_normal((1, 3))
    if kind == "pencil":                            # 4 planes through one line, plus 4 more
        t = rng.standard_normal(3)
        through = rng.standard_normal((4, 3))
        through -= np.outer(through @ t, t) / (t @ t)
        return np.vstack([through, rng.standard_normal((4, 3))])
    if kind == "all_zero":
        return np.zeros((5, 2))
    if kind == "mixed":
        return np.vstack([np.zeros((1, 3)), base[:2], 3 * base[:1],
                          base[0] + base[1], base[0] - 2 * base[1]])
    raise KeyError(kind)


def check_exact(M, A_shape=None):
    A_shape = A_shape or (M.shape[0],)
    ps = enumerate_patterns(M, A_shape)
    flat = ps.masks.reshape(ps.count, -1)
    assert ps.source == "exact" and ps.masks.shape[1:] == tuple(A_shape)
    assert unique_masks(flat)[0].shape[0] == ps.count           # all distinct
    pre = ps.gates @ M.T                                         # strictly inside cells
    nonzero = np.linalg.norm(M, axis=1) > 0
    assert np.all(np.abs(pre[:, nonzero]) > 1e-10)
    np.testing.assert_array_equal(masks_from_gates(lambda g: g @ M.T, ps.gates), flat)
    # the brute-force patterns (many random w) are all among the exact ones
    w = np.random.default_rng(5).standard_normal((20000, M.shape[1]))
    brute = {tuple(row) for row in (w @ M.T >= 0).astype(int)}
    assert brute <= {tuple(row) for row in flat.astype(int)}
    return ps


@pytest.mark.parametrize("seed", range(12))
def test_exact_matches_independent_counts_random(seed):
    rng = np.random.default_rng(seed)
    N, p = int(rng.integers(4, 13)), int(rng.integers(1, 4))
    M = rng.standard_normal((N, p))
    ps = check_exact(M)
    assert ps.count == zaslavsky_count(M) == arrangement_bound(N, p)   # general position
    assert count_cells_bruteforce(M, 200_000, seed) <= ps.count


@pytest.mark.parametrize("kind", ["zero_rows", "duplicates", "rank2_in_R3", "rank1",
                                  "pencil", "all_zero", "mixed"])
def test_exact_degenerate(kind):
    M = degenerate(kind, np.random.default_rng(1))
    ps = check_exact(M)
    assert ps.count == zaslavsky_count(M) == whitney_count(M)
    assert ps.count <= arrangement_bound(M.shape[0], min(M.shape))
    if kind == "zero_rows":                         # zero rows are always active
        assert np.all(ps.masks[:, -3:] == 1)


@pytest.mark.parametrize("seed", range(8))
def test_exact_matches_whitney_integer_data(seed):
    # integer rows in up to 5 dimensions: many parallel rows and concurrent flats
    rng = np.random.default_rng(100 + seed)
    p, N = 2 + seed % 4, int(rng.integers(4, 10))
    M = rng.integers(-1, 2, (N, p)).astype(float)
    assert check_exact(M).count == whitney_count(M)


def test_bruteforce_equals_exact_on_fat_cells():
    # integer-ish data in R^2 has no sliver cells: brute force finds every one
    M = np.array([[1.0, 0], [0, 1], [1, 1], [1, -1], [2, 2], [0, 0], [-1, 0]])
    assert enumerate_patterns(M, (7,)).count == count_cells_bruteforce(M, 50_000, 0) == 8


@pytest.mark.parametrize("kind", ["mixed", "rank1", "all_zero"])
def test_exact_equals_exhaustive_lp(kind):
    M = degenerate(kind, np.random.default_rng(2))
    ps = enumerate_patterns(M, (M.shape[0],))
    assert {tuple(m) for m in ps.masks.astype(int)} == lp_cells(M)


def test_exact_3d_pencil_lp():
    t = np.array([1.0, 2.0, -1.0])
    P = np.array([[2.0, -1, 0], [1, 0, 1], [0, 1, 2], [1, 1, 1]])
    M = np.vstack([P[:3], P[3:] - (P[3:] @ t)[:, None] * t / (t @ t)])
    assert {tuple(m) for m in enumerate_patterns(M, (4,)).masks.astype(int)} == lp_cells(M)


def test_tensor_shape_and_gate_shape():
    rng = np.random.default_rng(3)
    M = rng.standard_normal((2 * 3, 4)) @ np.diag([1, 1, 0, 1.0])   # rank 3 < p = 4
    ps = enumerate_patterns(M, (2, 3), p_shape=(2, 2))
    assert ps.masks.shape == (ps.count, 2, 3) and ps.gates.shape == (ps.count, 2, 2)
    again = masks_from_gates(lambda g: (g.reshape(len(g), 4) @ M.T).reshape(-1, 2, 3), ps.gates)
    np.testing.assert_array_equal(again, ps.masks)
    assert ps.count == arrangement_bound(6, 3)


def test_sampling_converges_to_exact():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((8, 2))
    exact = {tuple(m) for m in enumerate_patterns(X, (8,)).masks.astype(int)}
    ps = sample_patterns(lambda g: g @ X.T, 2, 100_000, seed=0)
    assert ps.source == "sampled" and ps.requested == 100_000 and ps.seed == 0
    assert {tuple(m) for m in ps.masks.astype(int)} == exact
    np.testing.assert_array_equal(masks_from_gates(lambda g: g @ X.T, ps.gates), ps.masks)


def test_pattern_count_error():
    M = np.random.default_rng(0).standard_normal((60, 4))
    bound = arrangement_bound(60, 4)
    with pytest.raises(PatternCountError, match=str(bound)) as info:
        enumerate_patterns(M, (60,), cap=1000)
    assert isinstance(info.value, ValueError)
    assert "1000" in str(info.value) and "patterns" in str(info.value)


def test_arrangement_bound_values():
    assert arrangement_bound(0, 3) == 1 and arrangement_bound(5, 0) == 1
    assert arrangement_bound(5, 1) == 2 and arrangement_bound(5, 2) == 10
    assert arrangement_bound(3, 3) == 8 and arrangement_bound(4, 3) == 14


def test_sample_gates_deterministic_and_prefix():
    a = sample_gates((2, 3), 10, seed=7)
    assert a.shape == (10, 2, 3)
    np.testing.assert_array_equal(a, sample_gates((2, 3), 10, seed=7))
    np.testing.assert_array_equal(a[:4], sample_gates((2, 3), 4, seed=7))
    assert not np.array_equal(a, sample_gates((2, 3), 10, seed=8))


def test_unique_masks_keeps_first_and_zero():
    m = np.array([[1, 0], [0, 0], [1, 0], [1, 1], [0, 0]], dtype=float)
    u, kept = unique_masks(m)
    np.testing.assert_array_equal(kept, [0, 1, 3])
    np.testing.assert_array_equal(u, m[[0, 1, 3]])


def test_masks_from_torch_layer():
    torch = pytest.importorskip("torch")
    X = torch.randn(5, 2, dtype=torch.float64)
    g = sample_gates(2, 6, 0)
    m = masks_from_gates(lambda h: torch.as_tensor(h) @ X.T, g)
    np.testing.assert_array_equal(m, (g @ X.numpy().T >= 0).astype(float))


def test_pattern_set_npz_roundtrip(tmp_path):
    X = np.random.default_rng(6).standard_normal((5, 2))
    for ps in (enumerate_patterns(X, (5,)), sample_patterns(lambda g: g @ X.T, 2, 50, 3)):
        np.savez(tmp_path / "p.npz", **ps.to_npz_dict())
        with np.load(tmp_path / "p.npz", allow_pickle=False) as f:
            back = PatternSet.from_npz_dict(f)
        np.testing.assert_array_equal(back.masks, ps.masks)
        np.testing.assert_array_equal(back.gates, ps.gates)
        assert (back.source, back.seed, back.requested) == (ps.source, ps.seed, ps.requested)
    assert ps.without_zero().count <= ps.count
    with pytest.raises(ValueError):
        ps.masks[0, 0] = 2.0                       # frozen: arrays are read-only

"""BSDS500 region metrics: hand-computed cases, scikit-image / brute-force cross-checks, ODS/OIS."""

from itertools import combinations

import numpy as np
import pytest
from skimage.metrics import adapted_rand_error
from skimage.metrics import variation_of_information as sk_vi

from clusterseg.metrics import (
    aggregate_region_scores,
    ods_ois,
    probabilistic_rand_index,
    rand_index,
    region_scores,
    segmentation_covering,
    variation_of_information,
)

GT = np.array([[0, 0], [1, 1]])
SEG = np.array([[0, 0], [0, 1]])
GT_FLAT = np.zeros((2, 2), int)


def h2(*p):
    p = np.array(p, dtype=float)
    return float(-(p * np.log2(p)).sum())


def random_labels(shape, n, seed):
    return np.random.default_rng(seed).integers(0, n, size=shape)


def brute_rand_index(a, b):
    a, b = a.ravel(), b.ravel()
    agree = [(a[i] == a[j]) == (b[i] == b[j]) for i, j in combinations(range(a.size), 2)]
    return float(np.mean(agree))


def test_covering_hand():
    # GT region {0,1}: best IoU 2/3 (with {0,1,2}); GT region {2,3}: best IoU 1/2 (with {3})
    assert segmentation_covering(SEG, GT) == pytest.approx((2 * 2 / 3 + 2 * 1 / 2) / 4)
    # covering is directional: the segmentation by the ground truth differs
    assert segmentation_covering(GT, SEG) == pytest.approx((3 * 2 / 3 + 1 * 1 / 2) / 4)
    # flat GT: one region of 4 px, best IoU 3/4
    assert segmentation_covering(SEG, GT_FLAT) == pytest.approx(0.75)
    # BSDS pools covered areas over ground truths = mean (all have N pixels)
    assert segmentation_covering(SEG, [GT, GT_FLAT]) == pytest.approx((7 / 3 + 3) / 8)
    np.testing.assert_allclose(segmentation_covering(SEG, [GT, GT_FLAT], aggregate=None), [7 / 12, 0.75])
    assert segmentation_covering(SEG, [GT, GT_FLAT], aggregate="best") == pytest.approx(0.75)


def test_rand_index_hand():
    # 6 pairs; agreeing: (0,1) same/same, (0,3), (1,3) different/different
    assert rand_index(SEG, GT) == pytest.approx(0.5)
    assert rand_index(SEG, GT_FLAT) == pytest.approx(0.5)  # only the 3 pairs inside {0,1,2}
    assert probabilistic_rand_index(SEG, [GT, GT_FLAT]) == pytest.approx(0.5)
    assert probabilistic_rand_index(GT, [GT, GT_FLAT]) == pytest.approx((1 + 2 / 6) / 2)
    # negative and huge label values take the np.unique path of the relabelling
    assert rand_index(SEG - 5, GT * 10**12) == pytest.approx(0.5)


def test_variation_of_information_hand():
    # H(S|G) = 1/2 * 1 bit; H(G|S) = 3/4 * H(2/3, 1/3)
    expected = 0.5 + 0.75 * h2(2 / 3, 1 / 3)
    assert variation_of_information(SEG, GT) == pytest.approx(expected)
    assert variation_of_information(SEG, GT_FLAT) == pytest.approx(h2(3 / 4, 1 / 4))
    assert variation_of_information(SEG, [GT, GT_FLAT]) == pytest.approx((expected + h2(0.75, 0.25)) / 2)
    assert variation_of_information(SEG, GT, base=np.e) == pytest.approx(expected * np.log(2))
    np.testing.assert_allclose(
        variation_of_information(SEG, [GT, GT_FLAT], aggregate=None), [expected, h2(0.75, 0.25)]
    )
    assert variation_of_information(SEG, [GT, GT_FLAT], aggregate="best") == pytest.approx(h2(0.75, 0.25))


def test_region_scores_hand():
    s = region_scores(SEG, [GT, GT_FLAT])
    assert s["covering_count"] == pytest.approx(7 / 3 + 3)
    assert s["covering_total"] == 8
    assert s["covering"] == pytest.approx((7 / 3 + 3) / 8)
    # BSDS cntP: every segment's best IoU over the regions of *all* ground truths
    # {0,1,2}: max(2/3, 3/4); {3}: max(1/2, 1/4)
    assert s["covering_reverse_count"] == pytest.approx(3 * 0.75 + 1 * 0.5)
    assert s["covering_reverse_total"] == 4
    assert s["pri"] == pytest.approx(0.5)
    assert s["vi"] == pytest.approx(variation_of_information(SEG, [GT, GT_FLAT]))
    assert s["n_segments"] == 2


@pytest.mark.parametrize("seed", range(5))
def test_cross_check_scikit_image(seed):
    a = random_labels((6, 7), 4, seed)
    b = random_labels((6, 7), 3, seed + 100)
    # VI (bits) = sum of the two conditional entropies of scikit-image
    assert variation_of_information(a, b) == pytest.approx(float(np.sum(sk_vi(b, a))))
    # brute-force pair counting
    assert rand_index(a, b) == pytest.approx(brute_rand_index(a, b))
    # adapted Rand error (label 0 kept): precision = sum_ij n_ij(n_ij - 1) / sum_j b_j(b_j - 1),
    # recall = the same over sum_i a_i(a_i - 1); the Rand index follows from these pair counts
    _, precision, recall = adapted_rand_error(b, a, ignore_labels=())
    n = a.size
    sq_b = np.sum(np.unique(b, return_counts=True)[1] ** 2) - n
    sq_a = np.sum(np.unique(a, return_counts=True)[1] ** 2) - n
    for same_pairs in (precision * sq_b, recall * sq_a):
        assert rand_index(a, b) == pytest.approx(1 - (sq_a + sq_b - 2 * same_pairs) / (n * (n - 1)))


def test_identical_is_perfect_and_permutation_invariant():
    gt = random_labels((8, 9), 5, 7)
    perm = np.array([40, 3, 17, 9, 11])[gt]
    assert segmentation_covering(perm, gt) == 1.0
    assert probabilistic_rand_index(perm, [gt, gt]) == 1.0
    assert variation_of_information(perm, gt) == pytest.approx(0.0, abs=1e-12)
    seg = random_labels((8, 9), 3, 8)
    seg_perm = np.array([7, 2, 5])[seg]
    for f in (segmentation_covering, probabilistic_rand_index, variation_of_information):
        assert f(seg, gt) == pytest.approx(f(seg_perm, perm))


def test_ods_ois_hand_sweep():
    # 2 images x 3 parameters
    pri = ods_ois([[0.6, 0.8, 0.7], [0.9, 0.5, 0.6]])
    assert pri.ods == pytest.approx(0.75) and pri.ods_index == 0  # column means .75 .65 .65
    assert pri.ois == pytest.approx(0.85)  # (0.8 + 0.9) / 2
    np.testing.assert_array_equal(pri.ois_indices, [1, 0])
    vi = ods_ois([[2.0, 1.5, 1.8], [1.0, 2.0, 3.0]], higher_is_better=False)
    assert vi.ods == pytest.approx(1.5) and vi.ods_index == 0  # means 1.5 1.75 2.4
    assert vi.ois == pytest.approx(1.25)  # (1.5 + 1.0) / 2
    # ties: first parameter for ODS, last per image for OIS (BSDS collect_eval_reg)
    tie = ods_ois([[0.5, 0.5]])
    assert tie.ods_index == 0 and tie.ois_indices.tolist() == [1]


def test_ods_sc_pools_areas():
    # image A: sumR 100, cnt [10, 90]; image B: sumR 900, cnt [810, 630]
    rows = [
        [
            {"covering_count": 10, "covering_total": 100, "pri": 0.6, "vi": 2.0},
            {"covering_count": 90, "covering_total": 100, "pri": 0.8, "vi": 1.5},
        ],
        [
            {"covering_count": 810, "covering_total": 900, "pri": 0.9, "vi": 1.0},
            {"covering_count": 630, "covering_total": 900, "pri": 0.5, "vi": 2.0},
        ],
    ]
    res = aggregate_region_scores(rows)
    # pooled: 820/1000 vs 720/1000 -> parameter 0, although the plain mean of ratios prefers 1
    assert res["ods"]["sc"] == pytest.approx(0.82) and res["ods_index"]["sc"] == 0
    assert ods_ois([[0.1, 0.9], [0.9, 0.7]]).ods_index == 1
    assert res["ois"]["sc"] == pytest.approx((90 + 810) / 1000)
    assert res["ods"]["pri"] == pytest.approx(0.75) and res["ois"]["pri"] == pytest.approx(0.85)
    assert res["ods"]["vi"] == pytest.approx(1.5) and res["ois"]["vi"] == pytest.approx(1.25)


def test_aggregate_with_real_region_scores():
    gts = [GT, GT_FLAT]
    sweep = [GT_FLAT, SEG, GT]  # coarse -> fine
    rows = [[region_scores(s, gts) for s in sweep], [region_scores(s, [GT]) for s in sweep]]
    res = aggregate_region_scores(rows)
    cnt = np.array([[r["covering_count"] for r in row] for row in rows])
    tot = np.array([[r["covering_total"] for r in row] for row in rows])
    pooled = cnt.sum(0) / tot.sum(0)
    assert res["ods"]["sc"] == pytest.approx(pooled.max())
    assert res["ods_index"]["sc"] == int(np.argmax(pooled))
    # image 2's only ground truth is GT itself -> its best covering is 1 at parameter 2
    assert rows[1][2]["covering"] == 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="shape mismatch"):
        segmentation_covering(SEG, np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="non-integer"):
        rand_index(SEG * 0.3, GT)
    with pytest.raises(ValueError, match="empty"):
        probabilistic_rand_index(np.zeros((0,), int), np.zeros((0,), int))
    with pytest.raises(ValueError, match="base"):
        variation_of_information(SEG, GT, base=1)
    with pytest.raises(ValueError, match="n_images, n_params"):
        ods_ois([0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        ods_ois([[0.1, np.nan]])
    with pytest.raises(ValueError, match="weights shape"):
        ods_ois([[0.1, 0.2]], weights=[[1.0]])
    with pytest.raises(ValueError, match="same non-zero number"):
        aggregate_region_scores([[region_scores(SEG, GT)], []])
    with pytest.raises(ValueError, match="empty"):
        aggregate_region_scores([])
    with pytest.raises(ValueError, match="lack the key"):
        aggregate_region_scores([[{"pri": 1.0}]])

"""Instance metrics: matching / DSB accuracy and COCO AP on hand-computed label maps."""

import numpy as np
import pytest

from clusterseg.metrics import (
    COCO_IOU_THRESHOLDS,
    average_precision,
    instance_iou,
    match_instances,
    match_instances_dataset,
)

# gt: 1 (4 px, top-left), 2 (3 px, right column), 3 (1 px, bottom-left)
GT = np.array(
    [
        [1, 1, 0, 0],
        [1, 1, 0, 2],
        [0, 0, 0, 2],
        [3, 0, 0, 2],
    ]
)
# pred: 1 = 3 px inside gt 1 (IoU 3/4); 2 = {(1,3),(2,2),(2,3)} (IoU 2/4 with gt 2);
#       4 = {(3,3)} (IoU 1/3 with gt 2)
PRED = np.array(
    [
        [1, 1, 0, 0],
        [1, 0, 0, 2],
        [0, 0, 2, 2],
        [0, 0, 0, 4],
    ]
)


def relabel(labels, mapping):
    out = np.zeros_like(labels)
    for old, new in mapping.items():
        out[labels == old] = new
    return out


def test_instance_iou_hand():
    iou, pred_ids, gt_ids = instance_iou(PRED, GT)
    np.testing.assert_array_equal(pred_ids, [1, 2, 4])
    np.testing.assert_array_equal(gt_ids, [1, 2, 3])
    expected = np.array([[3 / 4, 0, 0], [0, 2 / 4, 0], [0, 1 / 3, 0]])
    np.testing.assert_allclose(iou, expected)


def test_match_instances_hand():
    m = match_instances(PRED, GT, iou_threshold=0.5)
    assert (m.n_pred, m.n_gt, m.tp, m.fp, m.fn) == (3, 3, 2, 1, 1)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 / 3)
    assert m.dsb_accuracy == pytest.approx(2 / 4)
    assert m.mean_matched_iou == pytest.approx((0.75 + 0.5) / 2)
    pairs = sorted(zip(m.matched_pred.tolist(), m.matched_gt.tolist()))
    assert pairs == [(1, 1), (2, 2)]

    m = match_instances(PRED, GT, iou_threshold=0.6)
    assert (m.tp, m.fp, m.fn) == (1, 2, 2)
    assert m.dsb_accuracy == pytest.approx(1 / 5)

    # at 0.3 both pred 2 and pred 4 qualify for gt 2: the larger IoU wins
    m = match_instances(PRED, GT, iou_threshold=0.3)
    assert m.tp == 2 and sorted(m.matched_pred.tolist()) == [1, 2]


def test_match_instances_maximises_number_of_matches():
    # 1-D: gt 1 = [0, 5), gt 2 = [5, 10); pred a = [2, 8) has IoU 3/8 with both,
    # pred b = [0, 2) has IoU 2/5 with gt 1. Greedy by IoU (b-1 then a-1) would
    # leave one match; the optimal matching pairs a-2 and b-1.
    gt = np.array([1] * 5 + [2] * 5)
    pred = np.array([2, 2, 1, 1, 1, 1, 1, 1, 0, 0])
    m = match_instances(pred, gt, iou_threshold=0.35)
    assert m.tp == 2
    assert sorted(zip(m.matched_pred.tolist(), m.matched_gt.tolist())) == [(1, 2), (2, 1)]


def test_identical_and_permutation():
    m = match_instances(GT, GT)
    assert (m.tp, m.fp, m.fn) == (3, 0, 0)
    assert m.dsb_accuracy == 1.0 and m.f1 == 1.0 and m.mean_matched_iou == 1.0
    perm_pred = relabel(PRED, {1: 9, 2: 5, 4: 1})
    perm_gt = relabel(GT, {1: 2, 2: 7, 3: 1})
    a = match_instances(PRED, GT)
    b = match_instances(perm_pred, perm_gt)
    for key in ("tp", "fp", "fn", "precision", "recall", "f1", "dsb_accuracy", "mean_matched_iou"):
        assert getattr(a, key) == pytest.approx(getattr(b, key)), key
    assert average_precision(perm_pred, perm_gt).ap == pytest.approx(average_precision(PRED, GT).ap)


def test_empty_cases():
    empty = np.zeros_like(GT)
    m = match_instances(empty, empty)
    assert m.precision == m.recall == m.f1 == m.dsb_accuracy == 1.0
    assert np.isnan(m.mean_matched_iou)
    m = match_instances(empty, GT)
    assert (m.tp, m.fp, m.fn) == (0, 0, 3)
    assert m.precision == 0.0 and m.recall == 0.0 and m.dsb_accuracy == 0.0
    assert average_precision(empty, GT).ap == 0.0
    assert np.isnan(average_precision(GT, empty).ap)


def test_match_instances_dataset_sums_counts():
    m = match_instances_dataset([PRED, GT], [GT, GT])
    assert (m.n_pred, m.n_gt, m.tp, m.fp, m.fn) == (6, 6, 5, 1, 1)
    assert m.dsb_accuracy == pytest.approx(5 / 7)
    assert m.matched_image.tolist().count(1) == 3


def test_average_precision_hand():
    scores = [{1: 0.9, 2: 0.8, 4: 0.7}]
    r = average_precision([PRED], [GT], scores)
    # t=0.5: TP, TP, FP with 3 GT -> precision 1 up to recall 2/3 -> 67 of 101 points
    assert r.ap50 == pytest.approx(67 / 101)
    # t in 0.55..0.75: only pred 1 (IoU exactly 0.75) -> recall 1/3 -> 34 points
    assert r.ap75 == pytest.approx(34 / 101)
    expected = np.array([67] + [34] * 5 + [0] * 4) / 101
    np.testing.assert_allclose(r.ap_per_threshold, expected)
    assert r.ap == pytest.approx(expected.mean())
    np.testing.assert_allclose(r.iou_thresholds, COCO_IOU_THRESHOLDS)
    assert (r.n_pred, r.n_gt) == (3, 3)


def test_average_precision_depends_on_ranking():
    # false positive ranked first: precision envelope 2/3 up to recall 2/3
    r = average_precision([PRED], [GT], [{1: 0.9, 2: 0.8, 4: 0.95}])
    assert r.ap50 == pytest.approx(67 * (2 / 3) / 101)
    # array form of the scores (index = label) gives the same result
    r2 = average_precision([PRED], [GT], [np.array([0, 0.9, 0.8, 0, 0.95])])
    assert r2.ap50 == pytest.approx(r.ap50)
    # greedy COCO matching in score order: at IoU 0.3, pred 4 (ranked before pred 2) takes gt 2
    r3 = average_precision([PRED], [GT], [{1: 0.9, 2: 0.8, 4: 0.85}], iou_thresholds=[0.3])
    # ranking: 1 TP, 4 TP, 2 FP -> recall 2/3 at precision 1
    assert r3.ap == pytest.approx(67 / 101)


def test_average_precision_ranks_across_images():
    a = np.array([[1, 1, 0, 0]])
    b_gt = np.array([[0, 0, 1, 1]])
    b_pred = np.array([[1, 1, 0, 0]])  # misses entirely
    preds, gts = [a, b_pred], [a, b_gt]
    # the false positive of image 2 outranks the true positive of image 1
    low = average_precision(preds, gts, [{1: 0.5}, {1: 0.9}])
    assert low.ap50 == pytest.approx(51 * 0.5 / 101)
    high = average_precision(preds, gts, [{1: 0.9}, {1: 0.5}])
    assert high.ap50 == pytest.approx(51 / 101)


def test_identical_average_precision_is_one():
    r = average_precision([GT, PRED], [GT, PRED])
    assert r.ap == 1.0 and r.ap50 == 1.0 and r.ap75 == 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="shape mismatch"):
        match_instances(PRED, GT[:2])
    with pytest.raises(ValueError, match="negative"):
        match_instances(-PRED, GT)
    with pytest.raises(ValueError, match="non-integer"):
        match_instances(PRED * 0.5, GT)
    with pytest.raises(ValueError, match="empty"):
        match_instances(np.zeros((0, 2), int), np.zeros((0, 2), int))
    with pytest.raises(ValueError, match="iou_threshold"):
        match_instances(PRED, GT, iou_threshold=0)
    with pytest.raises(ValueError, match="iou_thresholds"):
        average_precision(PRED, GT, iou_thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match="2 images"):
        average_precision([PRED, GT], [GT])
    with pytest.raises(ValueError, match="no score for instance label 4"):
        average_precision([PRED], [GT], [{1: 0.5, 2: 0.4}])
    with pytest.raises(ValueError, match="entries"):
        average_precision([PRED], [GT], [np.array([0.0, 1.0])])
    with pytest.raises(ValueError, match="no images"):
        match_instances_dataset([], [])


def test_dsb_score_hand_computed_and_per_image_mean():
    from clusterseg.metrics import dsb_score

    gt = np.array([[1, 1, 0, 2, 2, 0]])
    pred = np.array([[1, 1, 0, 2, 0, 3]])
    # IoUs: (1,1) = 1, (2,2) = 0.5; pred 3 unmatched.
    r = dsb_score([pred], [gt], iou_thresholds=[0.5, 0.75])
    assert r.per_threshold.tolist() == pytest.approx([2 / 3, 1 / 4])
    assert r.at(0.75) == pytest.approx(0.25)
    # Two images weigh the same, whatever their object counts: (1 + 0) / 2.
    empty_pred = np.zeros((1, 6), int)
    r2 = dsb_score([gt, empty_pred], [gt, gt], iou_thresholds=[0.5])
    assert r2.score == pytest.approx(0.5) and r2.per_image.tolist() == [1.0, 0.0]
    # Both empty: perfect.
    assert dsb_score([empty_pred], [empty_pred]).score == 1.0
    with pytest.raises(ValueError):
        dsb_score([pred], [gt], iou_thresholds=[1.5])
    with pytest.raises(ValueError, match="not among"):
        r.at(0.6)


def test_instance_scores_summary_matches_its_parts():
    from clusterseg.metrics import dsb_score, instance_scores

    gt = np.array([[1, 1, 0, 2, 2, 0]])
    pred = np.array([[1, 1, 0, 2, 0, 3]])
    s = instance_scores([pred, gt], [gt, gt])
    assert s["images"] == 2 and (s["n_pred"], s["n_gt"]) == (5, 4)
    assert s["dsb_score"] == pytest.approx(dsb_score([pred, gt], [gt, gt]).score)
    assert s["acc50"] == pytest.approx((2 / 3 + 1) / 2)
    # Pooled at IoU 0.5: TP 4, FP 1, FN 0.
    assert (s["precision50"], s["recall50"], s["f1_50"]) == pytest.approx((4 / 5, 1.0, 8 / 9))


def test_symmetric_best_dice_and_difference_in_count_by_hand():
    from clusterseg.metrics import best_dice, difference_in_count, symmetric_best_dice

    pred = np.array([[1, 1, 2, 2]])
    gt = np.array([[1, 1, 1, 0]])
    assert best_dice(pred, gt) == pytest.approx((0.8 + 0.4) / 2)  # 2*2/(2+3), 2*1/(2+3)
    assert best_dice(gt, pred) == pytest.approx(0.8)
    assert symmetric_best_dice(pred, gt) == pytest.approx(0.6)
    assert symmetric_best_dice(gt, gt) == 1.0
    assert symmetric_best_dice(np.zeros((2, 2), int), np.zeros((2, 2), int)) == 1.0
    assert symmetric_best_dice(np.zeros((1, 4), int), gt) == 0.0
    assert difference_in_count(pred, gt) == 1 and difference_in_count(gt, pred) == -1
    with pytest.raises(ValueError):
        symmetric_best_dice(np.zeros((2, 2), int), np.zeros((3, 2), int))

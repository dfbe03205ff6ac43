"""Evaluation metrics for superpixels, region segmentation and instance segmentation.

All functions take NumPy label maps and are vectorised with contingency tables
(:func:`numpy.bincount`).

Superpixels (:mod:`clusterseg.metrics.superpixel`)
    :func:`achievable_segmentation_accuracy`, :func:`boundary_recall`,
    :func:`boundary_precision`, :func:`undersegmentation_error`,
    :func:`compactness`, :func:`f_measure`, :func:`n_segments`,
    :func:`label_boundaries`, and :func:`superpixel_scores` (all at once).
Regions, BSDS500 benchmark (:mod:`clusterseg.metrics.regions`)
    :func:`segmentation_covering`, :func:`probabilistic_rand_index`,
    :func:`rand_index`, :func:`variation_of_information`,
    :func:`region_scores`, :func:`ods_ois`, :func:`aggregate_region_scores`.
Instances (:mod:`clusterseg.metrics.instances`)
    :func:`instance_iou`, :func:`match_instances` (precision, recall, F1,
    DSB2018/StarDist ``dsb_accuracy``), :func:`match_instances_dataset`,
    :func:`average_precision` (COCO AP, AP50, AP75), :func:`dsb_score`
    (DSB2018 score: per-image accuracy averaged over IoU 0.5:0.95),
    :func:`instance_scores` (all of them in one dict).
"""

from .instances import (
    COCO_IOU_THRESHOLDS,
    AveragePrecision,
    DSBScore,
    InstanceMatching,
    average_precision,
    best_dice,
    difference_in_count,
    dsb_score,
    instance_iou,
    instance_scores,
    match_instances,
    match_instances_dataset,
    symmetric_best_dice,
)
from .regions import (
    OdsOis,
    aggregate_region_scores,
    ods_ois,
    probabilistic_rand_index,
    rand_index,
    region_scores,
    segmentation_covering,
    variation_of_information,
)
from .superpixel import (
    achievable_segmentation_accuracy,
    boundary_precision,
    boundary_recall,
    compactness,
    f_measure,
    label_boundaries,
    n_segments,
    superpixel_scores,
    undersegmentation_error,
)

__all__ = [
    # superpixels
    "achievable_segmentation_accuracy",
    "boundary_recall",
    "boundary_precision",
    "undersegmentation_error",
    "compactness",
    "f_measure",
    "n_segments",
    "label_boundaries",
    "superpixel_scores",
    # regions (BSDS500)
    "segmentation_covering",
    "rand_index",
    "probabilistic_rand_index",
    "variation_of_information",
    "region_scores",
    "ods_ois",
    "OdsOis",
    "aggregate_region_scores",
    # instances
    "instance_iou",
    "match_instances",
    "match_instances_dataset",
    "DSBScore",
    "dsb_score",
    "instance_scores",
    "best_dice",
    "symmetric_best_dice",
    "difference_in_count",
    "InstanceMatching",
    "average_precision",
    "AveragePrecision",
    "COCO_IOU_THRESHOLDS",
]

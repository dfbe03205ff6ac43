"""The top-level namespace: every advertised name resolves to the right object."""

import importlib

import pytest

import clusterseg


def test_all_names_resolve():
    for name in clusterseg.__all__:
        assert getattr(clusterseg, name) is not None, name


def test_superpixels_stays_a_function_after_submodule_imports():
    # ``clusterseg.superpixels`` is both a function and a subpackage name: importing
    # submodules must not rebind the top-level name to the module.
    importlib.import_module("clusterseg.superpixels.classical")
    importlib.import_module("clusterseg.superpixels.lnsnet")
    assert callable(clusterseg.superpixels)
    assert clusterseg.superpixels.__module__ == "clusterseg.superpixels.api"


def test_lazy_unsupervised_functions():
    from clusterseg import unsupervised

    assert clusterseg.segment is unsupervised.segment
    assert clusterseg.segment_sequence is unsupervised.segment_sequence


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        clusterseg.no_such_thing  # noqa: B018


@pytest.mark.parametrize("own_pass", [True, False])
def test_lnsnet_through_dispatcher_is_connected_and_consecutive(blocks_image, own_pass):
    import numpy as np
    from skimage.measure import label as cc_label

    labels = clusterseg.superpixels(blocks_image, 20, method="lnsnet", enforce_connectivity=own_pass)
    assert labels.dtype == np.int32 and labels.shape == blocks_image.shape[:2]
    n = int(labels.max()) + 1
    assert labels.min() == 0 and np.unique(labels).size == n
    assert cc_label(labels + 1, connectivity=1, background=0).max() == n

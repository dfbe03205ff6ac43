"""The model registry: every method listed, every learned model loaded by name or path, save/load exact."""

import numpy as np
import pytest
import torch

from clusterseg.io.checkpoints import CheckpointError
from clusterseg.models import WEIGHTS_DIR, list_models, load_model, model_info
from clusterseg.models.lnsnet import save_lnsnet_weights
from clusterseg.models.lnsnet_model import LNSNetModel
from clusterseg.models.spatial_embedding import SpatialEmbeddingModel
from clusterseg.superpixels.api import METHODS as SUPERPIXEL_METHODS
from clusterseg.unsupervised import METHODS as UNSUPERVISED_METHODS
from clusterseg.unsupervised import SPWNetModel


def _same_state(a, b) -> bool:
    a, b = (m.net if isinstance(m, LNSNetModel) else m for m in (a, b))
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_registry_lists_every_method_of_the_public_functions():
    classical = set(list_models(task="superpixels", kind="classical"))
    assert classical == set(SUPERPIXEL_METHODS) - {"lnsnet"}
    assert set(list_models(task="unsupervised")) == set(UNSUPERVISED_METHODS)
    assert list_models(kind="pretrained") == ["lnsnet-bsds500", "dsb2018-nuclei"]
    for name in list_models(kind="pretrained"):
        assert (WEIGHTS_DIR / model_info(name).weights).is_file()
    assert "watershed-nuclei" in list_models(task="instances", kind="classical")


@pytest.mark.parametrize("name, cls", [("lnsnet-bsds500", LNSNetModel), ("dsb2018-nuclei", SpatialEmbeddingModel)])
def test_pretrained_models_load_by_name_cached_and_round_trip_exactly(tmp_path, name, cls):
    model = load_model(name)
    assert isinstance(model, cls) and not (model.net if cls is LNSNetModel else model).training
    assert load_model(name) is model  # one cache
    fresh = load_model(name, cache=False)
    assert fresh is not model and _same_state(fresh, model)
    path = tmp_path / "copy.pt"
    model.save(path)
    again = load_model(path)
    assert type(again) is cls and _same_state(again, model)


def test_pretrained_models_predict():
    rng = np.random.default_rng(0)
    img = np.zeros((64, 64), np.float32)
    yy, xx = np.mgrid[0:64, 0:64]
    for cy, cx in ((16, 16), (44, 40)):
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < 64] = 1.0
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    labels = load_model("dsb2018-nuclei").segment(img)[0]
    assert labels.shape == img.shape and labels.max() >= 1
    from clusterseg.superpixels import superpixels

    sp = superpixels(np.stack([img] * 3, -1).clip(0, 1), 16, method="lnsnet")
    assert sp.shape == img.shape and 4 <= sp.max() + 1 <= 64


def test_spwnet_checkpoint_loads_through_the_registry(tmp_path):
    img = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    model = SPWNetModel(2, ch_mul=4, n_blocks=2, n_superpixels=20, patch_sizes=(16,), n_batches=1, max_side=None)
    model.fit([img], epochs=1)
    path = model.save(tmp_path / "spw.pt")
    loaded = load_model(path)
    assert isinstance(loaded, SPWNetModel) and _same_state(loaded.net, model.net)
    np.testing.assert_array_equal(loaded.predict(img), model.predict(img))


def test_load_model_errors(tmp_path):
    with pytest.raises(ValueError, match="per-image"):
        load_model("dsc")
    with pytest.raises(ValueError, match="classical"):
        load_model("slic")
    with pytest.raises(FileNotFoundError, match="neither a registered model"):
        load_model("no-such-model")
    other = tmp_path / "other.pt"
    torch.save({"format": "somebody.else", "state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        load_model(other)
    with pytest.raises(ValueError, match="task"):
        list_models(task="video")
    with pytest.raises(ValueError, match="unknown model"):
        model_info("nope")


def test_a_model_of_the_wrong_kind_is_refused_by_each_method(tmp_path):
    from clusterseg.instances.api import load_instance_model
    from clusterseg.superpixels.lnsnet import load_model as load_lnsnet_model

    sem = tmp_path / "sem.pt"
    load_model("dsb2018-nuclei").save(sem)
    with pytest.raises(CheckpointError, match="not LNSNet"):
        load_lnsnet_model(sem)
    lns = tmp_path / "lns.pt"
    save_lnsnet_weights(load_model("lnsnet-bsds500").net, lns)
    with pytest.raises(CheckpointError, match="not a spatial-embedding"):
        load_instance_model(lns)


def test_from_pretrained_gives_a_fresh_copy():
    a = SpatialEmbeddingModel.from_pretrained("dsb2018-nuclei")
    assert a is not load_model("dsb2018-nuclei") and _same_state(a, load_model("dsb2018-nuclei"))
    with pytest.raises(ValueError, match="not a spatial-embedding"):
        SpatialEmbeddingModel.from_pretrained("lnsnet-bsds500")


def test_cli_lists_the_registry():
    from typer.testing import CliRunner

    from clusterseg.cli import app

    res = CliRunner().invoke(app, ["models", "--task", "instances"])
    assert res.exit_code == 0 and "dsb2018-nuclei" in res.output and "lnsnet" not in res.output
    bad = CliRunner().invoke(app, ["models", "--task", "video"])
    assert bad.exit_code == 2


def test_every_model_file_has_one_layout_and_old_lnsnet_files_still_load(tmp_path):
    from clusterseg.io.checkpoints import load_checkpoint, save_checkpoint
    from clusterseg.models.lnsnet import WEIGHTS_FORMAT

    lns = load_model("lnsnet-bsds500").net
    paths = {"lnsnet": save_lnsnet_weights(lns, tmp_path / "l.pt", {"note": "x"}),
             "sem": load_model("dsb2018-nuclei").save(tmp_path / "s.pt")}
    img = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    spw = SPWNetModel(2, ch_mul=4, n_blocks=2, n_superpixels=20, patch_sizes=(16,), n_batches=1, max_side=None)
    paths["spwnet"] = spw.fit([img], epochs=1).save(tmp_path / "w.pt")
    for path in paths.values():
        obj = load_checkpoint(path)
        assert set(obj) == {"format", "version", "config", "state_dict", "metadata"}
        assert obj["format"].startswith("clusterseg.") and obj["metadata"]["clusterseg_version"]
    assert load_checkpoint(paths["lnsnet"])["metadata"]["note"] == "x"
    # the first LNSNet weights layout ("arch", as the shipped file) still loads
    old = {"format": WEIGHTS_FORMAT, "arch": {"max_shift": 0.5, "alpha": 1.0, "seed_window": 1.0},
           "state_dict": lns.state_dict()}
    save_checkpoint(old, tmp_path / "old.pt")
    again = load_model(tmp_path / "old.pt")
    assert again.net.seed_window == 1.0 and _same_state(again, lns)


def test_training_checkpoints_load_through_the_registry(tmp_path):
    from clusterseg.instances.api import load_instance_model
    from clusterseg.io.checkpoints import save_checkpoint

    sem = load_model("dsb2018-nuclei")
    save_checkpoint({"model": sem.checkpoint(), "optimizer": {}, "epoch": 1}, tmp_path / "last.pt")
    assert _same_state(load_instance_model(tmp_path / "last.pt"), sem)
    lns = load_model("lnsnet-bsds500").net
    save_checkpoint({"format": "clusterseg.lnsnet.train/1", "model": lns.state_dict(), "next_index": 1,
                     "config": {"arch": {"seed_window": 1.0}}}, tmp_path / "checkpoint.pt")
    assert _same_state(load_model(tmp_path / "checkpoint.pt"), lns)


def test_configs_store_checked_plain_values():
    from clusterseg.models.lnsnet import LNSNetConfig
    from clusterseg.training.lifelong import LNSNetTrainingConfig

    assert LNSNetConfig(spatial_weight=2).spatial_weight == 2.0
    with pytest.raises(ValueError):
        LNSNetConfig(spatial_weight=-1)
    cfg = LNSNetTrainingConfig(n_segments=[100, 200])
    assert cfg.n_segments == (100, 200) and hash(cfg)


def test_lnsnet_model_protocol(tmp_path):
    from clusterseg.models.lnsnet_model import LNSNetModel
    from clusterseg.superpixels.lnsnet import lnsnet_superpixels

    img = np.random.default_rng(0).random((40, 56, 3)).astype(np.float32)
    model = LNSNetModel.from_pretrained("lnsnet-bsds500", refine_steps=2)
    assert model.config.refine_steps == 2 and model.net is not load_model("lnsnet-bsds500").net
    labels = model.predict(img, 16)
    assert np.array_equal(labels, lnsnet_superpixels(img, 16, refine_steps=2))
    path = model.save(tmp_path / "lns.pt")
    again = LNSNetModel.load(path)  # the inference options travel with the weights
    assert again.config == model.config and _same_state(again, model)
    assert np.array_equal(again.predict(img, 16), labels)
    assert LNSNetModel.load(path, refine_steps=1).config.refine_steps == 1
    assert load_model(path).config == model.config
    with pytest.raises(FileExistsError):
        model.save(path)
    with pytest.raises(ValueError, match="not an LNSNet"):
        LNSNetModel.from_pretrained("dsb2018-nuclei")


def test_every_loaded_model_has_the_same_protocol(tmp_path):
    img = np.random.default_rng(1).random((32, 40, 3)).astype(np.float32)
    spw = SPWNetModel(2, ch_mul=4, n_blocks=2, n_superpixels=20, patch_sizes=(16,), n_batches=1, max_side=None)
    paths = [load_model("lnsnet-bsds500").save(tmp_path / "l.pt"), load_model("dsb2018-nuclei").save(tmp_path / "s.pt"),
             spw.fit([img], epochs=1).save(tmp_path / "w.pt")]
    for path in paths:
        model = load_model(path, cache=False)
        labels = model.predict(img)
        assert labels.shape == img.shape[:2] and np.issubdtype(labels.dtype, np.integer) and labels.min() >= 0
        assert model.config is not None and callable(model.save)

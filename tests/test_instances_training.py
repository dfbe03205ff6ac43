"""Training spatial-embedding models: crops, checkpoints, exact resume, CLI train / predict / evaluate."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from skimage.draw import disk
from typer.testing import CliRunner

from clusterseg.cli import app
from clusterseg.instances.model import SpatialEmbeddingModel
from clusterseg.io import write_image, write_labels
from clusterseg.io.checkpoints import CheckpointError
from clusterseg.training.instances import InstanceCrops, InstanceTrainingConfig, prepare_samples, train_instances, suggest_config
from clusterseg.nn.spatial_embedding import gaussian_membership, sigma_for_radius

TINY = dict(epochs=2, crop=64, batch_size=4, width=0.25)


def _disks(n: int, seed: int = 0, size: int = 80):
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        labels = np.zeros((size, size), np.int32)
        image = np.full((size, size, 3), 20, np.uint8)
        for k in range(5):
            r, c = rng.integers(10, size - 10, 2)
            rr, cc = disk((r, c), 6, shape=labels.shape)
            labels[rr, cc] = k + 1
            image[rr, cc] = 200
        samples.append((f"img{i}", image, labels))
    return samples


def test_crops_are_reproducible_and_object_centred():
    samples = prepare_samples(_disks(3))
    config = InstanceTrainingConfig(crop=32, object_crop_fraction=1.0)
    crops = InstanceCrops(samples, config)
    x1, y1 = crops[1]
    x2, y2 = crops[1]
    assert x1.shape == (3, 32, 32) and y1.shape == (32, 32) and y1.dtype == torch.int64
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert all((crops[i][1] > 0).any() for i in range(3))  # every crop holds an object
    crops.epoch = 1
    assert not torch.equal(crops[1][1], y1)  # a new epoch draws new crops


def test_small_images_are_padded_to_the_crop():
    samples = prepare_samples(_disks(1, size=40))
    x, y = InstanceCrops(samples, InstanceTrainingConfig(crop=64))[0]
    assert x.shape == (3, 64, 64) and int(y.max()) > 0


def test_modality_balance_draws_rare_modalities_more_often():
    samples = _disks(10)
    for name, image, _ in samples[:2]:  # two colour images among ten grey ones
        image[..., 0] //= 2
    prepared = prepare_samples(samples)
    assert [s.modality for s in prepared] == ["colour"] * 2 + ["grey"] * 8
    uniform = InstanceCrops(prepared, InstanceTrainingConfig(crop=32))
    assert sorted(uniform._order) == list(range(10))  # balance 0: a permutation, as before
    half = InstanceCrops(prepared, InstanceTrainingConfig(crop=32, modality_balance=0.5)).image_weights()
    assert half[:2].sum() == pytest.approx(2 ** 0.5 / (2 ** 0.5 + 8 ** 0.5))
    full = InstanceCrops(prepared, InstanceTrainingConfig(crop=32, modality_balance=1.0, samples_per_epoch=4000))
    assert full.image_weights()[:2].sum() == pytest.approx(0.5)
    drawn = np.isin(full._order, [0, 1]).mean()
    assert 0.45 < drawn < 0.55 and len(full._order) == 4000
    with pytest.raises(ValueError, match="modality_balance"):
        InstanceTrainingConfig(modality_balance=1.5)


def test_train_resume_is_exact(tmp_path):
    data = _disks(6)
    torch.manual_seed(123)
    full = train_instances(data[:4], data[4:], tmp_path / "full", InstanceTrainingConfig(**TINY), progress=False)
    # The same run interrupted after one epoch, then resumed.
    train_instances(data[:4], data[4:], tmp_path / "part", InstanceTrainingConfig(**{**TINY, "epochs": 1}),
                    progress=False)
    # Epoch 1 of a 1-epoch run differs from epoch 1 of a 2-epoch run only by the
    # learning rate of the poly schedule at epoch 0, which is the same (lr * 1).
    resumed = train_instances(data[:4], data[4:], tmp_path / "part", InstanceTrainingConfig(**TINY), resume=True,
                              progress=False)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]["state_dict"]
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)["model"]["state_dict"]
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6), key
    rows = list(csv.DictReader(open(tmp_path / "part" / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # no epoch trained twice
    for path in (full, resumed):
        model = SpatialEmbeddingModel.load(path)
        assert "val_dsb50_tuned" in model.metadata


def test_train_refuses_existing_run_and_changed_hyper_parameters(tmp_path):
    data = _disks(4)
    config = InstanceTrainingConfig(**{**TINY, "epochs": 1})
    train_instances(data[:3], data[3:], tmp_path, config, progress=False)
    with pytest.raises(FileExistsError, match="resume"):
        train_instances(data[:3], data[3:], tmp_path, config, progress=False)
    with pytest.raises(CheckpointError, match="crop"):
        train_instances(data[:3], data[3:], tmp_path, InstanceTrainingConfig(**{**TINY, "crop": 72}),
                        resume=True, progress=False)


def test_train_rejects_bad_data_and_config(tmp_path):
    empty = [(n, im, np.zeros_like(lab)) for n, im, lab in _disks(2)]
    with pytest.raises(ValueError, match="no objects"):
        train_instances(empty, [], tmp_path / "a", InstanceTrainingConfig(**TINY), progress=False)
    name, image, labels = _disks(1)[0]
    with pytest.raises(ValueError, match="do not match"):
        train_instances([(name, image, labels[:50])], [], tmp_path / "b", InstanceTrainingConfig(**TINY),
                        progress=False)
    with pytest.raises(ValueError, match="crop"):
        InstanceTrainingConfig(crop=60)


def _write_folder(root, samples):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for name, image, labels in samples:
        write_image(root / "images" / f"{name}.png", image)
        write_labels(root / "labels" / f"{name}.tif", labels)


def test_cli_train_predict_evaluate(tmp_path):
    _write_folder(tmp_path / "data", _disks(6))
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "instances", "--images", str(tmp_path / "data/images"), "--labels",
                                 str(tmp_path / "data/labels"), "--out", str(run), "--epochs", "1", "--crop", "64",
                                 "--width", "0.25", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert (run / "best.pt").is_file() and (run / "log.csv").is_file()
    out = tmp_path / "pred"
    images = sorted((tmp_path / "data/images").iterdir())[:2]
    result = runner.invoke(app, ["instances", *map(str, images), "--model", str(run / "best.pt"), "-o", str(out),
                                 "--seed-threshold", "0.0", "--fg-threshold", "0.0", "--min-size", "1"])
    assert result.exit_code == 0, result.output
    assert (out / "img0_labels.png").is_file() and (out / "img0_overlay.png").is_file()
    header = (out / "img0_scores.csv").read_text().splitlines()[0]
    assert header == "label,score,area"
    # Predictions are never silently overwritten.
    again = runner.invoke(app, ["instances", str(images[0]), "--model", str(run / "best.pt"), "-o", str(out)])
    assert again.exit_code == 2 and "exists" in again.output
    # Evaluate the ground truth against itself: perfect scores.
    result = runner.invoke(app, ["evaluate", "instances", "--pred", str(tmp_path / "data/labels"), "--labels",
                                 str(tmp_path / "data/labels"), "--json", str(tmp_path / "scores.json")])
    assert result.exit_code == 0, result.output
    assert "dsb_score: 1.0000" in result.output
    assert '"ap50": 1.0' in (tmp_path / "scores.json").read_text()
    again = runner.invoke(app, ["evaluate", "instances", "--pred", str(out), "--labels", str(tmp_path / "data/labels"),
                                "--json", str(tmp_path / "scores.json")])
    assert again.exit_code == 2 and "exists" in again.output  # never replaced without --overwrite
    # Predictions named <stem>_labels.png are matched; missing ones are listed by name.
    missing = runner.invoke(app, ["evaluate", "instances", "--pred", str(out), "--labels",
                                  str(tmp_path / "data/labels")])
    assert missing.exit_code == 2 and "img2" in missing.output


def test_cli_train_reports_unmatched_names(tmp_path):
    _write_folder(tmp_path, _disks(2))
    (tmp_path / "labels" / "img1.tif").rename(tmp_path / "labels" / "other.tif")
    result = CliRunner().invoke(app, ["train", "instances", "--images", str(tmp_path / "images"), "--labels",
                                      str(tmp_path / "labels"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "img1" in result.output and "other" in result.output


def test_cli_train_on_cityscapes_layout(tmp_path):
    """Cars (class 26) of a tiny Cityscapes tree: trains on 'train', validates on 'val'."""
    root = tmp_path / "cityscapes"
    for split in ("train", "val"):
        for i, (name, image, labels) in enumerate(_disks(2, seed=len(split), size=32)):
            ids = np.where(labels > 0, 26000 + labels, 7).astype(np.uint16)  # cars on road
            stem = f"aachen_{i:06d}_000019"
            write_image(root / "leftImg8bit" / split / "aachen" / f"{stem}_leftImg8bit.png", image)
            write_labels(root / "gtFine" / split / "aachen" / f"{stem}_gtFine_instanceIds.png", ids)
    result = CliRunner().invoke(app, ["train", "instances", "--cityscapes", str(root), "--classes", "car",
                                      "--out", str(tmp_path / "run"), "--epochs", "1", "--crop", "32",
                                      "--width", "0.25"])
    assert result.exit_code == 0, result.output
    assert "2 training, 2 validation images" in result.output
    assert SpatialEmbeddingModel.load(tmp_path / "run" / "best.pt").n_classes == 1
    bad = CliRunner().invoke(app, ["train", "instances", "--cityscapes", str(root), "--classes", "spaceship",
                                   "--out", str(tmp_path / "run2")])
    assert bad.exit_code == 2 and "spaceship" in bad.output


def test_suggest_config_follows_object_size_and_image_count():
    labels = np.zeros((300, 320), np.int32)
    labels[10:50, 10:40] = 1  # bounding-box diagonal 50 px
    labels[100:140, 200:230] = 2
    few = [(f"i{i}", np.zeros((300, 320), np.uint8), labels) for i in range(10)]
    config, reason = suggest_config(few)
    assert config.crop == 200  # 4 x 50, a multiple of 8
    assert config.epochs == 300  # 26000 x (192/200)^2 / 10 = 2396, clipped
    assert config.val_every == 15
    assert config.initial_bandwidth == 12.5  # a quarter of the object length
    assert "crop 200" in reason and "300 epochs" in reason and "12.5 px" in reason
    many = few * 10
    assert suggest_config(many)[0].epochs == round(26000 * (192 / 200) ** 2 / 100)
    small = [(n, im[:96, :96], lab[:96, :96]) for n, im, lab in few]
    assert suggest_config(small)[0].crop == 96  # never beyond the smallest image
    overridden, _ = suggest_config(few, crop=64, epochs=3, width=0.25, lr=None, initial_bandwidth=3.0)
    assert (overridden.crop, overridden.epochs, overridden.width, overridden.lr) == (64, 3, 0.25, 5e-4)
    assert overridden.initial_bandwidth == 3.0
    with pytest.raises(ValueError, match="no training samples"):
        suggest_config([])


def test_init_bandwidth_sets_the_radius_of_an_untrained_network():
    # The untrained network predicts the initial bandwidth everywhere: phi = 0.5 at that radius.
    model = SpatialEmbeddingModel(width=0.25).eval()
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(model(x)[0, 2:4].detach(), torch.ones(2, 32, 32))  # the paper's bias
    model.init_bandwidth(12.0)
    sigma = model(x)[0, 2:4].detach()
    assert torch.allclose(sigma, torch.full_like(sigma, sigma_for_radius(12.0)))
    centre = torch.zeros(1, 2, dtype=torch.float64)
    at_radius = torch.tensor([[12.0 * model.pixel_size], [0.0]], dtype=torch.float64)
    phi = gaussian_membership(at_radius, centre, sigma[:, 0, 0].double()[None])
    assert float(phi) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="initial_bandwidth"):
        InstanceTrainingConfig(initial_bandwidth=0.0)
    with pytest.raises(ValueError, match="radius"):
        sigma_for_radius(-1.0)


def test_cli_trains_on_palette_labels_and_prints_its_settings(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for name, image, labels in _disks(3):
        write_image(tmp_path / "images" / f"{name}.png", image)
        palette = Image.fromarray(labels.astype(np.uint8), mode="P")
        palette.putpalette([0, 0, 0] + [v for i in range(255) for v in (40 * i % 256, 90, 200)])
        palette.save(tmp_path / "labels" / f"{name}.png")
    result = CliRunner().invoke(app, ["train", "instances", "--images", str(tmp_path / "images"), "--labels",
                                      str(tmp_path / "labels"), "--out", str(tmp_path / "run"), "--epochs", "1",
                                      "--width", "0.25", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "settings: median object length" in result.output and "crop" in result.output
    assert (tmp_path / "run" / "best.pt").is_file()


def test_validation_scores_the_best_seed_threshold(monkeypatch):
    import clusterseg.training.instances as ti

    seen = []

    def fake_evaluate(maps, samples, params):
        seen.append(params.seed_threshold)
        return {0.5: 0.2, 0.7: 0.6, 0.9: 0.0}[params.seed_threshold]

    monkeypatch.setattr(ti, "evaluate_dsb", fake_evaluate)
    monkeypatch.setattr(ti, "_predict_all", lambda model, samples: ["maps"])
    model = SpatialEmbeddingModel(width=0.25)
    assert ti.validation_score(model, ["sample"]) == 0.6
    assert sorted(seen) == [0.5, 0.7, 0.9] and model.clustering.seed_threshold == 0.9  # the model is unchanged


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    from clusterseg.training.instances import train_instances as run

    source = SpatialEmbeddingModel(width=0.25)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.5)  # far from any fresh initialisation
    source.save(tmp_path / "source.pt")
    # A learning rate of 1e-12 keeps the weights where training started (Adam moves each by about lr).
    config = InstanceTrainingConfig(epochs=1, crop=32, width=0.25, lr=1e-12, initial_weights=str(tmp_path / "source.pt"))
    best = SpatialEmbeddingModel.load(run(_disks(2), [], tmp_path / "run", config, progress=False))
    for (name, p), (_, q) in zip(best.named_parameters(), source.named_parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    wrong = InstanceTrainingConfig(epochs=1, crop=32, width=0.5, initial_weights=str(tmp_path / "source.pt"))
    with pytest.raises(ValueError, match="width 0.25"):
        run(_disks(2), [], tmp_path / "run2", wrong, progress=False)


def test_loss_ignores_crowd_pixels_in_every_seed_map():
    from clusterseg.instances.loss import SpatialEmbeddingLoss

    torch.manual_seed(0)
    raw = torch.randn(1, 2 + 2 + 2, 16, 16)
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[0, 2:6, 2:6] = 1
    classes = (labels > 0).long()
    crowd = classes.clone()
    crowd[0, 10:14, 10:14] = -1
    loss = SpatialEmbeddingLoss(2)
    base, ignored = loss(raw, labels, classes).seed, loss(raw, labels, crowd).seed
    assert ignored < base  # those pixels no longer count as background
    raw2 = raw.clone()
    raw2[0, 4:, 10:14, 10:14] += 5.0  # any seed value in the ignored region
    assert torch.isclose(loss(raw2, labels, crowd).seed, ignored)


def test_multi_class_data_trains_one_seed_map_per_class(tmp_path):
    class TwoClassData(list):
        classes = ("round", "square")

        def class_map(self, i):
            name, image, labels = self[i]
            out = np.zeros(labels.shape, np.int8)
            out[(labels > 0) & (labels % 2 == 1)] = 1
            out[(labels > 0) & (labels % 2 == 0)] = 2
            out[:2, :2] = -1
            return out

    rng = np.random.default_rng(0)
    data = TwoClassData()
    for i in range(3):
        labels = np.zeros((48, 48), np.int32)
        labels[5:15, 5:15], labels[25:40, 20:35], labels[30:40, 2:12] = 1, 2, 3
        image = (labels > 0).astype(np.float32) + rng.normal(0, 0.05, labels.shape).astype(np.float32)
        data.append((f"s{i}", image, labels))
    samples = prepare_samples(data)
    assert samples[0].classes is not None and samples[0].classes[30, 25] == 2 and samples[0].classes[35, 5] == 1
    cfg = InstanceTrainingConfig(crop=32, epochs=1, batch_size=2, width=0.25, augment=False, precision="float32")
    x, y = InstanceCrops(samples, cfg)[0]
    assert y.shape == (2, 32, 32) and set(np.unique(y[1].numpy())) <= {-1, 0, 1, 2}
    val = TwoClassData(data[:1])
    best = train_instances(data, val, tmp_path / "run", config=cfg, progress=False)
    model = SpatialEmbeddingModel.load(best)
    assert model.n_classes == 2 and np.isfinite(model.metadata["val_dsb50"])
    # each seed map is scored against its own class: perfect maps of class 1 only give half marks
    from clusterseg.training.instances import evaluate_dsb

    vs = prepare_samples(val)
    truth1 = np.where(vs[0].classes == 1, vs[0].labels, 0)
    emb = np.stack(np.meshgrid(np.arange(48.0), np.arange(48.0), indexing="ij")[::-1]) / 1024
    for lab in np.unique(truth1)[1:]:
        emb[:, truth1 == lab] = emb[:, truth1 == lab].mean(1, keepdims=True)
    seed = np.zeros((2, 48, 48), np.float32)
    seed[0][truth1 > 0] = 1.0
    maps = [{"embedding": emb.astype(np.float32), "sigma": np.full((2, 48, 48), 1.0, np.float32), "seed": seed}]
    assert evaluate_dsb(maps, vs, model.clustering) == pytest.approx(0.5)


def test_modality_thresholds_are_tuned_per_modality_and_kept_only_when_better(monkeypatch):
    from types import SimpleNamespace

    import clusterseg.training.instances as ti

    def fake_evaluate(maps, samples, params):
        # grey images are best with the general thresholds, colour ones with fg 0.3 / seed 0.6
        if samples[0].modality == "grey":
            return 0.8 if (params.fg_threshold, params.seed_threshold) == (0.5, 0.9) else 0.7
        return 0.4 + (params.fg_threshold == 0.3) * 0.1 + (params.seed_threshold == 0.6) * 0.2

    monkeypatch.setattr(ti, "evaluate_dsb", fake_evaluate)
    monkeypatch.setattr(ti, "_predict_all", lambda model, samples: [None] * len(samples))
    model = SpatialEmbeddingModel(width=0.25)  # general thresholds fg 0.5, seed 0.9
    mixed = [SimpleNamespace(modality="grey")] * 6 + [SimpleNamespace(modality="colour")] * 5
    tuned = ti.tune_modality_clustering(model, mixed)
    assert list(tuned) == ["colour"]
    params, score = tuned["colour"]
    assert (params.fg_threshold, params.seed_threshold, score) == (0.3, 0.6, pytest.approx(0.7))
    assert params.min_size == model.clustering.min_size  # only the grid's thresholds change
    assert ti.tune_modality_clustering(model, mixed[:10]) == {}  # 4 colour images: too few to tune on
    assert ti.tune_modality_clustering(model, mixed[6:]) == {}  # one modality: the general thresholds are its own

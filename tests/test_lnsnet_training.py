"""Lifelong trainer: schedule, logs, checkpoints and exact resume (tiny synthetic images)."""

import csv

import numpy as np
import pytest
import torch

from clusterseg.nn.lnsnet import LNSNet
from clusterseg.io.checkpoints import load_checkpoint
from clusterseg.contours import canny_contours, contour_map, folder_contours, sobel_contours
from clusterseg.models.lnsnet import load_lnsnet
from clusterseg.nn.lnsnet_objective import lnsnet_losses, set_phase
from clusterseg.training.lifelong import train_lnsnet

from conftest import make_blocks_image

KW = dict(iters_feature=2, iters_seed=1, crop=None, n_segments=8, progress=False)


@pytest.fixture
def image_dir(tmp_path):
    import imageio.v3 as iio

    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(3):
        img, _ = make_blocks_image(24, 32, seed=i)
        iio.imwrite(d / f"im{i}.png", img)
    return d


def _read_log(run):
    with open(run / "log.csv") as fh:
        return list(csv.DictReader(fh))


def test_train_writes_log_checkpoint_and_weights(image_dir, tmp_path):
    run = tmp_path / "run"
    w = train_lnsnet(image_dir, run, **KW)
    rows = _read_log(run)
    assert [r["image"] for r in rows] == ["im0.png", "im1.png", "im2.png"]
    assert all(float(r["loss_cluster"]) >= 0 and float(r["loss_recon"]) > 0 for r in rows)
    ck = load_checkpoint(run / "checkpoint.pt", required_keys=("model", "optimizer", "next_index", "images"))
    assert ck["next_index"] == 3
    # GAL memory moved away from its initial ones and is stored
    assert not torch.equal(ck["model"]["gal.memory"], torch.ones(20))
    assert w.stat().st_size < 200_000
    model = load_lnsnet(w)
    assert isinstance(model, LNSNet)


def test_resume_continues_exactly(image_dir, tmp_path):
    full = tmp_path / "full"
    train_lnsnet(image_dir, full, **KW)
    part = tmp_path / "part"
    train_lnsnet(sorted(image_dir.iterdir())[:2], part, **KW)  # "interrupted" after two images
    with pytest.raises(FileExistsError):
        train_lnsnet(image_dir, part, **KW)
    train_lnsnet(image_dir, part, resume=True, **KW)
    rows = _read_log(part)
    assert [int(r["index"]) for r in rows] == [0, 1, 2]  # no image trained twice
    a = load_checkpoint(full / "checkpoint.pt")
    b = load_checkpoint(part / "checkpoint.pt")
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=0, atol=0)


def test_resume_refuses_changed_hyper_parameters(image_dir, tmp_path):
    from clusterseg.io.checkpoints import CheckpointError

    run = tmp_path / "run"
    train_lnsnet(sorted(image_dir.iterdir())[:1], run, **KW)
    with pytest.raises(CheckpointError, match="lr: saved 0.0003, given 0.001"):
        train_lnsnet(image_dir, run, resume=True, **{**KW, "lr": 1e-3})


def test_resume_errors(image_dir, tmp_path):
    with pytest.raises(FileNotFoundError):
        train_lnsnet(image_dir, tmp_path / "nothing", resume=True, **KW)
    with pytest.raises(ValueError, match="n_range"):
        train_lnsnet(image_dir, tmp_path / "r", n_range=8, **KW)
    with pytest.raises(ValueError, match="contours"):
        train_lnsnet(image_dir, tmp_path / "r2", contours="prewitt", **KW)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        train_lnsnet(empty, tmp_path / "r3", **KW)


def test_seed_phase_trains_only_the_seed_layer_and_moves_seeds():
    torch.manual_seed(0)
    img, _ = make_blocks_image(32, 40)
    from clusterseg.features import lab_xy_features

    x = torch.from_numpy(lab_xy_features(img))[None]
    model = LNSNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    set_phase(model, "seed")
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    shifts = []
    for _ in range(15):
        losses = lnsnet_losses(model, x, None, 12, phase="seed")
        opt.zero_grad()
        losses["total"].backward()
        assert all(p.grad is None for p in model.fem.parameters())
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.sel.parameters())
        opt.step()
        shifts.append(float(losses["shift"]))
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before if k.startswith(("fem.", "recon.")))
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("sel."))
    assert shifts[-1] != pytest.approx(shifts[0], abs=1e-4)  # the seeds move


def test_feature_phase_gradients_reach_embedder_not_seed_layer():
    torch.manual_seed(0)
    model = LNSNet()
    set_phase(model, "feature")
    x = torch.randn(1, 5, 20, 24)
    b = torch.rand(20, 24)
    losses = lnsnet_losses(model, x, b, 10, phase="feature", reg_weight=1.0)
    assert float(losses["reg"].detach()) > 0
    losses["total"].backward()
    assert all(p.grad is not None for p in model.fem.parameters())
    assert all(p.grad is None for p in model.sel.parameters())
    with pytest.raises(ValueError):
        lnsnet_losses(model, x, b, 10, phase="both")


def test_homogeneity_loss_term_and_its_gradients():
    """The homogeneity term is added with its weight and trains the embedder (feature phase)
    and the seed layer (seed phase, through the window-mean seed features)."""
    torch.manual_seed(0)
    img, _ = make_blocks_image(32, 40)
    from clusterseg.features import lab_xy_features

    x = torch.from_numpy(lab_xy_features(img))[None]
    model = LNSNet(seed_window=1.0)
    set_phase(model, "feature")
    plain = lnsnet_losses(model, x, None, 12, phase="feature", homogeneity_weight=0.0)
    assert float(plain["homogeneity"].detach()) == 0.0
    both = lnsnet_losses(model, x, None, 12, phase="feature", homogeneity_weight=2.0)
    assert float(both["homogeneity"].detach()) > 0
    torch.testing.assert_close(both["total"], plain["total"] + 2.0 * both["homogeneity"])
    only = lnsnet_losses(model, x, None, 12, phase="feature", homogeneity_weight=1.0, cluster_weight=0.0, beta=0.0)
    only["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.fem.parameters())
    model.zero_grad(set_to_none=True)
    set_phase(model, "seed")
    seed = lnsnet_losses(model, x, None, 12, phase="seed", homogeneity_weight=1.0, cluster_weight=0.0, seed_weight=0.0)
    seed["total"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.sel.parameters())
    # a larger compactness weights the position part more
    loose = lnsnet_losses(model, x, None, 12, phase="seed", homogeneity_weight=1.0, compactness=0.01)
    tight = lnsnet_losses(model, x, None, 12, phase="seed", homogeneity_weight=1.0, compactness=1.0)
    assert float(tight["homogeneity"].detach()) > float(loose["homogeneity"].detach())


def test_training_rejects_negative_loss_weights(image_dir, tmp_path):
    for name in ("homogeneity_weight", "compactness", "cluster_weight", "seed_window"):
        with pytest.raises(ValueError, match=name):
            train_lnsnet(image_dir, tmp_path / name, **{**KW, name: -1.0})


def test_contour_maps(tmp_path):
    img, _ = make_blocks_image(24, 32)
    rgb = img.astype(np.float32) / 255
    s = sobel_contours(rgb)
    assert s.shape == (24, 32) and s.min() >= 0 and s.max() == pytest.approx(1.0)
    assert s[12, 5] > s[4, 5]  # the quadrant border is an edge, the flat interior is not
    c = canny_contours(rgb)
    assert set(np.unique(c)) <= {0.0, 1.0} and c.sum() > 0
    assert np.all(sobel_contours(np.zeros((8, 8, 3))) == 0)
    import imageio.v3 as iio

    m = (np.arange(24 * 32).reshape(24, 32) % 256).astype(np.uint8)
    iio.imwrite(tmp_path / "a.png", m.T)  # stored transposed
    b = folder_contours(tmp_path, "a", (24, 32))
    np.testing.assert_allclose(b, m / 255, atol=1e-6)
    np.testing.assert_allclose(folder_contours(tmp_path, "a", (24, 32), invert=True), 1 - m / 255, atol=1e-6)
    np.testing.assert_allclose(contour_map(rgb, tmp_path, stem="a"), b)
    with pytest.raises(FileNotFoundError):
        folder_contours(tmp_path, "missing", (24, 32))
    with pytest.raises(ValueError):
        folder_contours(tmp_path, "a", (10, 10))
    with pytest.raises(ValueError):
        contour_map(rgb, "laplace")


def test_divergence_stops_with_a_clear_error_and_keeps_the_last_checkpoint(image_dir, tmp_path, monkeypatch):
    import clusterseg.training.lifelong as lifelong

    calls = {"n": 0}

    def exploding_losses(*args, **kwargs):
        losses = lnsnet_losses(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] > 3:  # image 0 takes 2 + 1 iterations; image 1 diverges at once
            losses["total"] = losses["total"] * float("nan")
        return losses

    monkeypatch.setattr(lifelong, "lnsnet_losses", exploding_losses)
    run = tmp_path / "run"
    with pytest.raises(FloatingPointError, match=r"image 1 \(im1.png\).*feature iteration 0"):
        train_lnsnet(image_dir, run, **KW)
    ck = load_checkpoint(run / "checkpoint.pt")
    assert ck["next_index"] == 1
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_finite_blow_up_stops_too(image_dir, tmp_path, monkeypatch):
    import clusterseg.training.lifelong as lifelong

    def huge_losses(*args, **kwargs):
        losses = lnsnet_losses(*args, **kwargs)
        losses["total"] = losses["total"] * 1e6  # finite, but far beyond any healthy value
        return losses

    monkeypatch.setattr(lifelong, "lnsnet_losses", huge_losses)
    with pytest.raises(FloatingPointError, match=r"max_loss.*image 0.*start a new run"):
        train_lnsnet(image_dir, tmp_path / "run", **KW)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="max_loss"):
        train_lnsnet(image_dir, tmp_path / "run2", **{**KW, "max_loss": 0})

"""End-to-end tests of the command-line interface (typer's CliRunner, synthetic images)."""

import numpy as np
import pytest
from typer.testing import CliRunner

from clusterseg.cli import app
from conftest import make_blocks_image

runner = CliRunner()


def test_help_lists_subcommands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "superpixels", "segment", "segment-sequence", "train"):
        assert command in result.output


@pytest.mark.parametrize("command", [["demo"], ["superpixels"], ["segment"], ["segment-sequence"], ["train", "lnsnet"]])
def test_every_subcommand_has_help_with_examples(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Examples" in result.output


def test_superpixels_writes_labels_and_overlay(tmp_path):
    from clusterseg.io import read_labels, write_image

    image, _ = make_blocks_image(40, 56)
    src = tmp_path / "img.png"
    write_image(src, image)
    out = tmp_path / "out"
    result = runner.invoke(app, ["superpixels", str(src), "-k", "12", "-m", "slic", "-o", str(out), "--colour"])
    assert result.exit_code == 0, result.output
    labels = read_labels(out / "img_labels.png")
    assert labels.shape == (40, 56)
    assert labels.min() == 0 and np.unique(labels).size == labels.max() + 1
    assert (out / "img_overlay.png").exists() and (out / "img_colour.png").exists()

    # A second run must refuse to replace the outputs, then succeed with --overwrite.
    again = runner.invoke(app, ["superpixels", str(src), "-k", "12", "-m", "slic", "-o", str(out)])
    assert again.exit_code == 2
    assert "exists" in again.output
    forced = runner.invoke(app, ["superpixels", str(src), "-k", "12", "-m", "slic", "-o", str(out), "--overwrite"])
    assert forced.exit_code == 0, forced.output


def test_superpixels_lnsnet_options(tmp_path):
    from clusterseg.io import read_labels, write_image

    write_image(tmp_path / "a.png", make_blocks_image(32, 40)[0])
    out = tmp_path / "out"
    result = runner.invoke(app, ["superpixels", str(tmp_path / "a.png"), "-k", "10", "--refine-steps", "2",
                                 "--adapt-steps", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert read_labels(out / "a_labels.png").shape == (32, 40)
    # --refine-steps 0 reaches the library: the paper's single pass
    import numpy as np

    import clusterseg
    from clusterseg.io import read_image

    single = runner.invoke(app, ["superpixels", str(tmp_path / "a.png"), "-k", "10", "--refine-steps", "0",
                                 "--no-overlay", "-o", str(tmp_path / "single")])
    assert single.exit_code == 0, single.output
    expected = clusterseg.superpixels(read_image(tmp_path / "a.png"), 10, refine_steps=0)
    assert np.array_equal(read_labels(tmp_path / "single" / "a_labels.png"), expected)
    for args, message in (
        (["-m", "slic", "--refine-steps", "1"], "only applies"),
        (["-m", "slic", "--refine-steps", "0"], "only applies"),
        (["--adapt-steps", "-1"], ">= 0"),
        (["--refine-steps", "-1"], ">= 0"),
    ):
        result = runner.invoke(app, ["superpixels", str(tmp_path / "a.png"), "-o", str(out), "--overwrite", *args])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_superpixels_missing_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.png"
    result = runner.invoke(app, ["superpixels", str(missing), "-m", "slic", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "nope.png" in result.output
    assert "Traceback" not in result.output


def test_bad_format_is_rejected(tmp_path):
    result = runner.invoke(app, ["superpixels", "x.png", "--format", "bmp", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "--format" in result.output


def test_demo_writes_overlay_and_never_overwrites(tmp_path):
    args = ["demo", "-m", "slic", "-k", "50", "-o", str(tmp_path)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    overlays = sorted(p.name for p in tmp_path.glob("*_overlay*.png"))
    assert overlays == ["astronaut_slic_k50_overlay-1.png", "astronaut_slic_k50_overlay.png"]
    assert str(tmp_path) in first.output


@pytest.mark.parametrize("method", ["dsc", "spwnet"])
def test_segment_writes_at_most_k_regions(tmp_path, method):
    from clusterseg.io import read_labels, write_image

    image, _ = make_blocks_image(32, 48)
    src = tmp_path / "blocks.png"
    write_image(src, image)
    out = tmp_path / "out"
    result = runner.invoke(app, ["segment", str(src), "-k", "4", "-m", method, "--max-iter", "8", "-o", str(out)])
    assert result.exit_code == 0, result.output
    labels = read_labels(out / "blocks_labels.png")
    assert labels.shape == (32, 48)
    assert 1 <= labels.max() + 1 <= 4
    assert (out / "blocks_colour.png").exists()


def test_segment_writes_the_ucm_and_cuts_it_at_a_threshold(tmp_path):
    import tifffile

    from clusterseg.io import read_labels, write_image
    from clusterseg.unsupervised import ucm_to_labels

    image, _ = make_blocks_image(32, 48)
    src = tmp_path / "blocks.png"
    write_image(src, image)
    out = tmp_path / "out"
    args = ["segment", str(src), "-k", "4", "--max-iter", "8", "--ucm", "--no-colour", "--no-overlay"]
    result = runner.invoke(app, [*args, "-t", "0.6", "-o", str(out)])
    assert result.exit_code == 0, result.output
    ucm = tifffile.imread(out / "blocks_ucm.tif")
    assert ucm.shape == (65, 97) and ucm.dtype == np.float32 and ucm.min() >= 0
    labels = read_labels(out / "blocks_labels.png")
    assert np.array_equal(labels, ucm_to_labels(ucm, 0.6))
    again = runner.invoke(app, [*args, "-o", str(tmp_path / "k")])  # no threshold: the level of K regions
    assert again.exit_code == 0, again.output
    assert read_labels(tmp_path / "k" / "blocks_labels.png").max() + 1 <= 4
    bad = runner.invoke(app, ["segment", str(src), "-t", "-1", "-o", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "--threshold" in bad.output


def test_segment_unknown_method_is_a_clear_error(tmp_path):
    from clusterseg.io import write_image

    image, _ = make_blocks_image(16, 16)
    write_image(tmp_path / "a.png", image)
    result = runner.invoke(app, ["segment", str(tmp_path / "a.png"), "-m", "kmeans++", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "kmeans++" in result.output


def test_segment_sequence_on_frames_and_volume(tmp_path):
    from clusterseg.io import read_labels, read_volume, write_image

    frames = tmp_path / "frames"
    for i in (1, 2, 10):  # natural order: frame2 before frame10
        image, _ = make_blocks_image(32, 32, seed=i)
        write_image(frames / f"frame{i}.png", image)
    out = tmp_path / "out"
    args = ["segment-sequence", str(frames), "-k", "3", "--train-frames", "1", "--epochs", "1",
            "--save-model", str(tmp_path / "m.pt"), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (out / "labels").iterdir())
    assert written == ["frame1.png", "frame10.png", "frame2.png"]
    assert read_labels(out / "labels" / "frame2.png").max() < 3
    assert (out / "labels_colour.gif").exists()

    # reuse the saved model on a greyscale volume stack
    import tifffile

    volume = np.stack([make_blocks_image(32, 32, seed=s)[0][..., 0] for s in range(3)])
    tifffile.imwrite(tmp_path / "vol.tif", volume, photometric="minisblack")
    out2 = tmp_path / "out2"
    result = runner.invoke(app, ["segment-sequence", str(tmp_path / "vol.tif"), "-k", "3",
                                 "--model", str(tmp_path / "m.pt"), "-o", str(out2)])
    # the model was trained on RGB frames; a greyscale volume must work or fail clearly
    if result.exit_code == 0:
        assert read_volume(out2 / "labels.tif").shape == volume.shape
    else:
        assert result.exit_code == 2 and "Traceback" not in result.output


def test_train_lnsnet_then_use_the_weights(tmp_path):
    from clusterseg.io import read_labels, write_image

    images = tmp_path / "train"
    for i in range(2):
        write_image(images / f"im{i}.png", make_blocks_image(40, 40, seed=i)[0])
    run = tmp_path / "run"
    args = ["train", "lnsnet", "--images", str(images), "--out", str(run), "--iters-feature", "2",
            "--iters-seed", "1", "--k-min", "10", "--k-max", "20", "--crop", "32"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    weights = run / "lnsnet_weights.pt"
    assert weights.exists() and (run / "log.csv").read_text().count("\n") == 3  # header + 2 images
    # A finished run is not silently retrained.
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "resume" in again.output

    src = tmp_path / "test.png"
    write_image(src, make_blocks_image(40, 40, seed=5)[0])
    out = tmp_path / "out"
    result = runner.invoke(app, ["superpixels", str(src), "-k", "16", "--weights", str(weights), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert read_labels(out / "test_labels.png").shape == (40, 40)


def test_superpixels_corrupt_weights_is_a_clear_error(tmp_path):
    from clusterseg.io import write_image

    write_image(tmp_path / "a.png", make_blocks_image(24, 24)[0])
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    result = runner.invoke(app, ["superpixels", str(tmp_path / "a.png"), "--weights", str(bad), "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "bad.pt" in result.output and "Traceback" not in result.output

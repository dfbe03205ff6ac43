"""Hostile inputs to the command line: bad files in a batch, name clashes, existing outputs, bugs.

Every test builds its own bad input in ``tmp_path``; images are tiny so that each run is fast.
"""

import errno

import numpy as np
import pytest
from typer.testing import CliRunner

from clusterseg.cli import app
from clusterseg.io import read_labels, write_image
from conftest import make_blocks_image

runner = CliRunner()

#: Fast settings of each command that takes several images; ``instances`` uses the shipped nuclei model.
COMMANDS = {
    "superpixels": ["superpixels", "-m", "slic", "-k", "12"],
    "instances": ["instances"],
    "segment": ["segment", "-m", "dsc", "-k", "3", "--max-iter", "4"],
}


def _image(path, height=32, width=40, seed=0):
    write_image(path, make_blocks_image(height, width, seed=seed)[0])
    return path


def _corrupt(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    return path


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_batch_goes_past_a_corrupt_file(tmp_path, command):
    good_a, good_c = _image(tmp_path / "a.png"), _image(tmp_path / "c.png", seed=1)
    bad = _corrupt(tmp_path / "bad.png")
    out = tmp_path / "out"
    result = runner.invoke(app, [*COMMANDS[command], str(good_a), str(bad), str(good_c), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # handled, not a crash
    assert (out / "a_labels.png").exists() and (out / "c_labels.png").exists()
    assert not any(name.startswith("bad") for name in _files(out))
    summary = result.output[result.output.index("1 of 3 inputs failed"):]
    assert "bad.png" in summary and "c.png" not in summary
    assert "Traceback" not in result.output


def test_batch_where_every_input_fails_exits_2(tmp_path):
    bad = [str(_corrupt(tmp_path / f"bad{i}.png")) for i in range(2)]
    result = runner.invoke(app, [*COMMANDS["superpixels"], *bad, "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "2 of 2 inputs failed" in result.output and "bad0.png" in result.output and "bad1.png" in result.output
    assert _files(tmp_path / "out") == []


def test_same_stem_in_two_folders_gets_folder_names(tmp_path):
    first = _image(tmp_path / "a" / "x.png", 32, 40)
    second = _image(tmp_path / "b" / "x.png", 40, 32, seed=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "x_labels.png").write_bytes(b"older result")  # a plain name must not be touched
    for extra in ([], ["--overwrite"]):
        result = runner.invoke(app, [*COMMANDS["superpixels"], str(first), str(second), "-o", str(out), *extra])
        assert result.exit_code == 0, result.output
        assert read_labels(out / "a_x_labels.png").shape == (32, 40)
        assert read_labels(out / "b_x_labels.png").shape == (40, 32)
        assert (out / "x_labels.png").read_bytes() == b"older result"
    assert _files(out) == ["a_x_labels.png", "a_x_overlay.png", "b_x_labels.png", "b_x_overlay.png", "x_labels.png"]


def test_same_stem_in_one_folder_gets_the_extension(tmp_path):
    png = _image(tmp_path / "x.png", 32, 40)
    tif = _image(tmp_path / "x.tif", 40, 32, seed=1)
    out = tmp_path / "out"
    result = runner.invoke(app, [*COMMANDS["superpixels"], str(png), str(tif), "--no-overlay", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert read_labels(out / "x_png_labels.png").shape == (32, 40)
    assert read_labels(out / "x_tif_labels.png").shape == (40, 32)


def test_unresolvable_name_clash_is_refused_before_writing(tmp_path):
    clash = _image(tmp_path / "a_x.png")  # its plain name equals the folder name of a/x.png
    inputs = [_image(tmp_path / "a" / "x.png"), _image(tmp_path / "b" / "x.png"), clash]
    out = tmp_path / "out"
    result = runner.invoke(app, [*COMMANDS["superpixels"], *map(str, inputs), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert str(inputs[0]) in result.output and str(clash) in result.output
    assert _files(out) == []


def test_an_input_given_twice_is_processed_once(tmp_path):
    src = _image(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    out = tmp_path / "out"
    result = runner.invoke(app, [*COMMANDS["superpixels"], str(src), str(tmp_path / "sub" / ".." / "a.png"),
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "given twice" in result.output
    assert _files(out) == ["a_labels.png", "a_overlay.png"]


def test_an_output_that_is_an_input_is_refused(tmp_path):
    _image(tmp_path / "x.png")
    victim = _image(tmp_path / "x_overlay.png")  # x.png's overlay would replace it
    before = victim.read_bytes()
    args = [*COMMANDS["superpixels"], str(tmp_path / "x.png"), str(victim), "-o", str(tmp_path), "--overwrite"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "also an input" in result.output
    assert victim.read_bytes() == before and not (tmp_path / "x_labels.png").exists()


@pytest.mark.parametrize(
    "command, existing",
    [("superpixels", "a_overlay.png"), ("instances", "a_scores.csv"), ("instances", "a_colour.png")],
)
def test_one_existing_output_means_nothing_is_written_for_that_image(tmp_path, command, existing):
    a, b = _image(tmp_path / "a.png"), _image(tmp_path / "b.png", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / existing).write_bytes(b"old")
    result = runner.invoke(app, [*COMMANDS[command], str(a), str(b), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert existing in result.output and "--overwrite" in result.output
    assert [n for n in _files(out) if n.startswith("a_")] == [existing]  # old and new never mixed
    assert (out / existing).read_bytes() == b"old"
    assert (out / "b_labels.png").exists()
    forced = runner.invoke(app, [*COMMANDS[command], str(a), str(b), "-o", str(out), "--overwrite"])
    assert forced.exit_code == 0, forced.output
    assert (out / "a_labels.png").exists() and (out / existing).read_bytes() != b"old"


def test_a_failed_write_removes_the_outputs_already_written(tmp_path, monkeypatch):
    import clusterseg.io

    def refuse(*args, **kwargs):
        raise PermissionError("read-only overlay folder")

    monkeypatch.setattr(clusterseg.io, "write_image", refuse)  # labels are written first, the overlay fails
    out = tmp_path / "out"
    result = runner.invoke(app, [*COMMANDS["superpixels"], str(_image(tmp_path / "a.png")), "-o", str(out)])
    assert result.exit_code == 2 and "read-only overlay folder" in result.output
    assert _files(out) == []


def test_segment_sequence_checks_every_output_before_training(tmp_path):
    frames = tmp_path / "frames"
    for i in range(2):
        _image(frames / f"f{i}.png", seed=i)
    out = tmp_path / "out"
    out.mkdir()
    (out / "labels_colour.gif").write_bytes(b"old")
    result = runner.invoke(app, ["segment-sequence", str(frames), "-k", "3", "--epochs", "1", "-o", str(out)])
    assert result.exit_code == 2 and "labels_colour.gif" in result.output
    assert _files(out) == ["labels_colour.gif"]  # no frame written, nothing trained


@pytest.mark.parametrize("bug", [TypeError("bad call"), ZeroDivisionError("x / 0"), RuntimeError("oops"),
                                 OSError(errno.EIO, "I/O error")])
def test_a_bug_propagates_with_its_traceback(tmp_path, monkeypatch, bug):
    import clusterseg

    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(clusterseg, "superpixels", broken)
    good = [str(_image(tmp_path / f"{name}.png")) for name in "ab"]
    result = runner.invoke(app, [*COMMANDS["superpixels"], *good, "-o", str(tmp_path / "out")])
    assert type(result.exception) is type(bug), result.output
    assert "error:" not in result.output


@pytest.mark.parametrize("problem", [ValueError("odd image"), PermissionError("no access"), "checkpoint"])
def test_a_user_error_is_one_line_and_exit_2(tmp_path, monkeypatch, problem):
    import clusterseg
    from clusterseg.training.checkpoints import CheckpointError

    if problem == "checkpoint":
        problem = CheckpointError("odd checkpoint")

    def refuse(*args, **kwargs):
        raise problem

    monkeypatch.setattr(clusterseg, "superpixels", refuse)
    result = runner.invoke(app, [*COMMANDS["superpixels"], str(_image(tmp_path / "a.png")), "-o", str(tmp_path)])
    assert result.exit_code == 2 and f"error: {problem}" in result.output
    assert "Traceback" not in result.output

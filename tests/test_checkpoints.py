import os

import pytest
import torch

from clusterseg.io.checkpoints import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip(tmp_path):
    obj = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "next_index": 3, "names": ["a.jpg", "b.jpg"], "lr": 3e-4}
    path = save_checkpoint(obj, tmp_path / "sub" / "ck.pt")
    back = load_checkpoint(path, required_keys=("model", "next_index"))
    assert back["next_index"] == 3 and back["names"] == ["a.jpg", "b.jpg"] and back["lr"] == 3e-4
    assert torch.equal(back["model"]["w"], obj["model"]["w"])
    # atomic write leaves no temporary files behind
    assert sorted(os.listdir(tmp_path / "sub")) == ["ck.pt"]


def test_overwrite_replaces_content(tmp_path):
    p = tmp_path / "ck.pt"
    save_checkpoint({"v": 1}, p)
    save_checkpoint({"v": 2}, p)
    assert load_checkpoint(p)["v"] == 2


def test_missing_corrupt_and_malformed(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(bad)
    good = save_checkpoint({"a": 1}, tmp_path / "good.pt")
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(good.read_bytes()[:20])
    with pytest.raises(CheckpointError):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="lacks keys"):
        load_checkpoint(good, required_keys=("model",))
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="dict"):
        load_checkpoint(tmp_path / "list.pt")


class Thing:
    pass


def test_refuses_pickled_objects(tmp_path):
    torch.save({"x": Thing()}, tmp_path / "obj.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "obj.pt")
    with pytest.raises(TypeError):
        save_checkpoint([1], tmp_path / "x.pt")


def test_checkpoint_file_mode_follows_umask(tmp_path):
    import os
    import stat

    from clusterseg.io.checkpoints import save_checkpoint

    old = os.umask(0o022)
    try:
        path = save_checkpoint({"x": 1}, tmp_path / "c.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644

"""Pulling and importing a live detector: downloads from a 127.0.0.1 server standing in for
download.pytorch.org, SHA-256 checks, failures that leave models/ as it was, and the listing.

The served file is torchvision's ssd300_vgg16 with deterministic random weights (the
``ssd300_reference`` fixture); the catalogue's hash is patched to that file's, as a mirror of the
real file would match the real one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct

import pytest

from store_server import ModelStoreServer
from ssd.base.errors import DownloadError, ModelError

NAME = "ssd300_vgg16_coco"


def _tree(root: str):
    if not os.path.exists(root):
        return None
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, ds, fs in os.walk(root) for f in ds + fs)


@pytest.fixture(scope="module")
def served(ssd300_reference):
    data = open(os.path.join(ssd300_reference, "checkpoint.pth"), "rb").read()
    return data, hashlib.sha256(data).hexdigest()


@pytest.fixture
def mirror(served, monkeypatch, tmp_path):
    """The server, the catalogue entry's hash patched to the served file's, empty caches."""
    from ssd.models.weights.catalogue import LIVE_DETECTORS

    data, digest = served
    entry = LIVE_DETECTORS[NAME]
    monkeypatch.setitem(LIVE_DETECTORS, NAME, dataclasses.replace(
        entry, file=dataclasses.replace(entry.file, sha256=digest)))
    srv = ModelStoreServer({f"/models/{entry.file.file}": data})
    monkeypatch.setenv("SSD_TORCHVISION_MIRROR", srv.url + "models/")
    monkeypatch.setenv("SSD_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    srv.key = f"/models/{entry.file.file}"
    yield srv
    srv.close()


def test_pull_downloads_converts_and_installs_once(mirror, tmp_path):
    from ssd.store import pull_model, read_meta

    seen = []
    result = pull_model(NAME, str(tmp_path / "models"), progress=lambda done, total: seen.append((done, total)))
    assert not result.already and seen[-1][0] == seen[-1][1] > 100e6
    meta = read_meta(result.path)
    assert meta["source"]["published_file"] is True and meta["source"]["url"].startswith(mirror.url)
    assert sorted(os.listdir(result.path)) == ["meta.json", "model.params"]
    assert [f for f in os.listdir(tmp_path / "weights") if not f.startswith(".")] == [
        "ssd300_vgg16_coco-b556d3b4.pth"]                   # kept for the next pull; no temporary left
    assert not [f for f in os.listdir(tmp_path / "weights") if f.startswith(".")]
    again = pull_model(NAME, str(tmp_path / "other"))       # another models folder: converted, not downloaded
    assert not again.already and mirror.hits == [mirror.key]


def test_a_file_with_another_hash_is_refused_and_models_stay_as_they_were(mirror, monkeypatch, tmp_path):
    from ssd.models.weights.catalogue import LIVE_DETECTORS
    from ssd.store import pull_model

    entry = LIVE_DETECTORS[NAME]
    monkeypatch.setitem(LIVE_DETECTORS, NAME, dataclasses.replace(
        entry, file=dataclasses.replace(entry.file, sha256="b556d3b4" + "0" * 56)))
    root = tmp_path / "models"
    (root / "mine").mkdir(parents=True)
    before = _tree(str(root))
    with pytest.raises(DownloadError, match="failed its checksum: expected SHA-256 b556d3b4"):
        pull_model(NAME, str(root))
    assert _tree(str(root)) == before
    assert not os.path.exists(tmp_path / "weights" / entry.file.file)


def test_prefix_only_entries_check_the_digits_in_the_name(mirror, monkeypatch, tmp_path):
    from ssd.models.weights.catalogue import LiveFile
    from ssd.models.weights.fetch import fetch_live

    data = b"not the weights"
    mirror.files["/models/vgg16_features-amdegroot-88682ab5.pth"] = data
    with pytest.raises(DownloadError, match="does not start with 88682ab5"):
        fetch_live(LiveFile("vgg16_features-amdegroot-88682ab5.pth", None, "prefix only"))
    assert not os.listdir(tmp_path / "weights")
    good = "x-" + hashlib.sha256(data).hexdigest()[:8] + ".pth"
    mirror.files["/models/" + good] = data
    assert open(fetch_live(LiveFile(good, None, "prefix only")), "rb").read() == data


def test_offline_pull_says_what_to_do(monkeypatch, tmp_path):
    from ssd.store import pull_model

    monkeypatch.setenv("SSD_TORCHVISION_MIRROR", "http://127.0.0.1:9/models/")
    monkeypatch.setenv("SSD_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(DownloadError) as info:
        pull_model(NAME, str(tmp_path / "models"))
    msg = str(info.value)
    assert "ssd300_vgg16_coco-b556d3b4.pth" in msg and "b556d3b43ab6c3f6" in msg
    assert not os.path.exists(tmp_path / "models")
    # the command to convert a copy made by hand, ready to paste: the detector is known, no NAME to look up
    assert "models import ssd300_vgg16_coco-b556d3b4.pth --as ssd300_vgg16_coco" in msg and "NAME" not in msg


def test_a_file_already_in_torchs_cache_is_used(served, mirror, tmp_path):
    from ssd.models.weights.catalogue import LIVE_DETECTORS
    from ssd.models.weights.fetch import fetch_live

    cached = tmp_path / "torch" / "hub" / "checkpoints" / LIVE_DETECTORS[NAME].file.file
    cached.parent.mkdir(parents=True)
    cached.write_bytes(served[0])
    assert fetch_live(LIVE_DETECTORS[NAME].file) == str(cached) and mirror.hits == []


def test_import_of_a_wrong_file_leaves_no_folder(tmp_path):
    from ssd.store import import_model

    other = tmp_path / "other.safetensors"
    head = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    other.write_bytes(struct.pack("<Q", len(head)) + head + b"\0\0\0\0")
    with pytest.raises(ModelError, match="not torchvision's ssd300_vgg16"):
        import_model(str(other), NAME, str(tmp_path / "models" / "x"))
    assert _tree(str(tmp_path / "models")) in (None, [])
    with pytest.raises(ModelError, match="not a pullable detector"):
        import_model(str(other), "yolo", str(tmp_path / "models" / "y"))


def test_listing_puts_live_sources_first_and_names_each_source(capsys):
    from ssd.cli.main import main

    assert main(["models", "pull", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert lines[0].startswith("ssd300_vgg16_coco") and "torchvision (download.pytorch.org)" in lines[0]
    assert lines[1].startswith("ssdlite320_mobilenet_v3_large_coco") and "COCO AP 21.3" in lines[1]
    assert "torchvision (download.pytorch.org)" in lines[1]
    assert all("GluonCV model store (unreachable since February 2024)" in l for l in lines
               if l.startswith("ssd_"))


def test_gluoncv_store_failure_names_the_live_detectors(monkeypatch, tmp_path):
    from ssd.models.gluoncv.weights import ensure_weights

    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mx"))
    monkeypatch.setenv("MXNET_GLUON_REPO", "http://127.0.0.1:9/")
    with pytest.raises(DownloadError) as info:
        ensure_weights("ssd_512_mobilenet1.0_coco")
    msg = str(info.value)
    assert "unreachable since February 2024" in msg and "python -m ssd models pull ssd300_vgg16_coco" in msg


def test_listing_with_a_folder_where_meta_json_should_be_names_it_and_goes_on(tmp_path, capsys):
    """One broken folder (its meta.json a folder) is skipped with its reason; the listing does not crash."""
    from ssd.cli.main import main

    (tmp_path / "broken" / "meta.json").mkdir(parents=True)
    assert main(["models", "--root", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "skipped broken:" in err and "meta.json is a folder" in err


def test_import_of_a_checkpoint_whose_heads_have_another_shape_is_a_clear_error(tmp_path):
    """torchvision's layout (every key there) but class heads whose channels are no multiple of the 91
    class slots, or a bias of another length: ModelError naming the key, not numpy's ValueError."""
    import numpy as np

    from ssd.models.gluoncv.from_torchvision import new_converted_net
    from ssd.store import import_model

    net, _ = new_converted_net()
    params = net._collect_params_with_prefix()
    convs = [k for k in params if k.startswith("features.") and k.endswith(".weight")]
    tensors = {}
    for i, k in enumerate(convs):
        tensors[f"backbone.c{i}.weight"] = np.zeros((1, 1, 1, 1), np.float32)
        tensors[f"backbone.c{i}.bias"] = np.zeros(1, np.float32)
    tensors["backbone.scale_weight"] = np.ones(512, np.float32)
    for i in range(6):
        for kind, channels in (("classification_head", 5), ("regression_head", 16)):
            tensors[f"head.{kind}.module_list.{i}.weight"] = np.zeros((channels, 1, 1, 1), np.float32)
            tensors[f"head.{kind}.module_list.{i}.bias"] = np.zeros(channels, np.float32)
    for name, channels, bias in (("odd-heads", 5, 5), ("odd-bias", 91 * 4, 7)):
        tensors["head.classification_head.module_list.0.weight"] = np.zeros((channels, 1, 1, 1), np.float32)
        tensors["head.classification_head.module_list.0.bias"] = np.zeros(bias, np.float32)
        path = tmp_path / f"{name}.safetensors"
        header, blobs, offset = {}, [], 0
        for key, arr in tensors.items():
            header[key] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
            blobs.append(arr.tobytes())
            offset += arr.nbytes
        head = json.dumps(header).encode()
        path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))
        with pytest.raises(ModelError, match="head.classification_head.module_list.0.*not torchvision's ssd300_vgg16"):
            import_model(str(path), NAME, str(tmp_path / "models" / name))
    assert _tree(str(tmp_path / "models")) in (None, [])


def test_pulling_over_a_half_pulled_folder_says_so_before_downloading(monkeypatch, tmp_path):
    """models/NAME holds a meta.json but no weights (a copy cut short, a folder made by hand): the
    pull names the folder and what to do at once, rather than download 139 MB and then suggest
    another name, which ``models pull`` cannot take."""
    from ssd.store import pull_model

    srv = ModelStoreServer({})
    monkeypatch.setenv("SSD_TORCHVISION_MIRROR", srv.url + "models/")
    monkeypatch.setenv("SSD_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    half = tmp_path / "models" / NAME
    half.mkdir(parents=True)
    (half / "meta.json").write_text('{"arch": "mine"}')
    try:
        with pytest.raises(ModelError, match=f"{NAME} exists but holds no model.params.*move it away or delete it"):
            pull_model(NAME, str(tmp_path / "models"))
    finally:
        srv.close()
    assert srv.hits == [] and (half / "meta.json").read_text() == '{"arch": "mine"}'

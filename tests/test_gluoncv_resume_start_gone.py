"""A GluonCV SSD run that started from a model folder resumes once that folder is deleted: the network is
built from the run's own record (``resumed_for_training``), the checkpoint brings every weight, and the
start record is kept. The smallest zoo SSD, random weights, 128 px, one iteration an epoch."""
from __future__ import annotations

import json
import os
import shutil

ARCH = "ssd_512_mobilenet1.0"


def _meta(folder: str) -> dict:
    with open(os.path.join(folder, "meta.json")) as f:
        return json.load(f)


def test_a_gluoncv_run_resumes_after_its_start_folder_is_deleted(tmp_path, synth_dir):
    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    opts = dict(data=synth_dir, arch=ARCH, batch_size=2, max_iters_per_epoch=1, limit_train=2, limit_val=2,
                input_size=128, device="cpu", precision="fp32")
    assert train(TrainConfig(out=a, epochs=1, **opts), install_signal_handlers=False).status == "done"
    assert train(TrainConfig(out=b, epochs=1, pretrained=a, **opts), install_signal_handlers=False).status == "done"
    recorded = _meta(b).get("start") or _meta(b)["zoo"]
    assert recorded["pretrained"] == os.path.abspath(a) and recorded["reused_classes"] == {"pikachu": "pikachu"}
    shutil.rmtree(a)
    res = train(TrainConfig(out=b, epochs=2, pretrained=a, resume=True, **opts), install_signal_handlers=False)
    assert res.status == "done" and [h["epoch"] for h in res.history] == [1, 2]
    meta = _meta(b)
    assert (meta.get("start") or meta["zoo"]) == recorded and meta["zoo"]["pretrained"] == os.path.abspath(a)

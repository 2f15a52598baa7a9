"""The computations the pages used to do inline, now library calls: each shown to give what the
page showed (the AppTest and browser tests prove the pages still show it)."""
from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image


def _png(size=(640, 480)) -> bytes:
    from ssd.data.synthetic import render_example

    buf = io.BytesIO()
    Image.fromarray(render_example(0, 3, "val")[0]).resize(size).save(buf, format="PNG")
    return buf.getvalue()


def test_detect_page_helpers(tiny_model_dir):
    from ssd.inference.batch import annotated_download, detect_images, mean_detection_ms, render_batch
    from ssd.inference.detector import Detector

    det = Detector.load(tiny_model_dir)
    items = [("a.png", _png((800, 600))), ("b.png", _png((320, 240))), ("bad.jpg", b"not an image")]
    results = detect_images(det, items, 0.45)
    bad = results[2]
    assert not bad.ok and bad.message.count("bad.jpg") == 1          # named once, whatever the error says
    bad.error = "truncated data"
    assert bad.message == "bad.jpg: truncated data"
    rendered = render_batch(results, 0.0, None, 3)
    times = [r.item.raw.timings_ms["total"] for r in rendered]
    assert mean_detection_ms(rendered) == sum(times) / 2 > 0 and mean_detection_ms([]) == 0.0
    originals = dict(items)
    one = Image.open(io.BytesIO(annotated_download(rendered[:1], originals)))
    assert one.format == "PNG" and one.size == (800, 600)                 # the original's resolution
    with zipfile.ZipFile(io.BytesIO(annotated_download(rendered, originals))) as zf:
        assert zf.namelist() == ["a_detections.png", "b_detections.png"]
        assert Image.open(zf.open("b_detections.png")).size == (320, 240)

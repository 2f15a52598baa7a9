"""The d2l banana layout opens through the same open_dataset call as every other format."""
import numpy as np
import pytest
from PIL import Image

from ssd.data.dataset import open_dataset
from ssd.base.errors import DatasetError


def _make(root, n=3, header="img_name,label,xmin,ymin,xmax,ymax"):
    for split in ("bananas_train", "bananas_val"):
        d = root / "banana-detection" / split
        (d / "images").mkdir(parents=True)
        rows = [header]
        for i in range(n):
            Image.new("RGB", (256, 256), (20 * i, 200, 30)).save(d / "images" / f"{i}.png")
            rows.append(f"{i}.png,0,{10 + i},{20},{110 + i},{140}")
        (d / "label.csv").write_text("\n".join(rows) + "\n")


def test_banana_layout_opens_with_normalized_labels(tmp_path):
    _make(tmp_path)
    s = open_dataset(str(tmp_path))
    assert s.kind == "banana" and s.classes == ["banana"]
    assert len(s.train) == 3 and len(s.val) == 3
    img, lab = s.train[1]
    assert img.shape == (256, 256, 3)
    np.testing.assert_allclose(lab, [[0, 11 / 256, 20 / 256, 111 / 256, 140 / 256]], rtol=1e-6)


def test_banana_with_a_wrong_header_is_a_clear_error(tmp_path):
    _make(tmp_path, header="name,cls,a,b,c,d")
    with pytest.raises(DatasetError, match="header"):
        open_dataset(str(tmp_path))

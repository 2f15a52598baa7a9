"""Names a stranger chose (an upload's file name as the browser sends it) in the files we hand back."""
from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

from ssd.viz.drawing import annotated_name, annotated_zip


def test_download_names_cannot_climb_or_hide_a_drive_or_control_characters():
    """A client may send any name; Windows unzippers and browsers split on a backslash and read
    ``C:`` as a drive, so none of these may reach a name in a ZIP we write."""
    for hostile in ("..\\..\\Startup\\evil.jpg", "C:evil.jpg", "a\x1b]0;x\x07\n.jpg", "x/../../y.jpg", "..", ""):
        name = annotated_name(hostile)
        assert name.endswith("_detections.png")
        assert not any(c in name for c in '\\/:*?"<>|') and name.isprintable(), repr(name)
        assert not name.startswith("."), repr(name)
    assert annotated_name("..\\..\\Startup\\evil.jpg") == "evil_detections.png"
    assert annotated_name("cam 1/IMG_0001.JPG") == "IMG_0001_detections.png"


def test_annotated_zip_members_stay_in_the_folder_they_are_unpacked_into():
    img = Image.new("RGB", (8, 8))
    det = np.zeros((0, 6), np.float32)
    data = annotated_zip([("..\\..\\evil.jpg", img, det), ("C:\\evil.jpg", img, det), ("ok.jpg", img, det)])
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names == ["evil_detections.png", "evil_detections_1.png", "ok_detections.png"]

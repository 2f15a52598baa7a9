"""The public datasets' downloads: where each is published, its checksums, and how it is unpacked.

Every fetcher works inside an in-progress marker (``ssd.data.staging``), so until every file is in
place loaders and pickers refuse the folder; an error names each file's destination, so a person
without internet can put the files there by hand.
"""
from __future__ import annotations

import json
import os
from typing import Optional

from ssd.base.atomic import atomic_write_json
from ssd.base.errors import DownloadError
from ssd.data.archive import safe_extract
from ssd.data.download import Progress, by_hand, download, remove_quietly
from ssd.data.staging import in_progress

# ---- Dataset facts. Module-level so tests and mirrors can override.
PIKACHU_BASE_URL = "https://apache-mxnet.s3-accelerate.amazonaws.com/gluon/dataset/pikachu/"
#: file name -> sha1, as published with the MXNet Gluon tutorial's downloader.
PIKACHU_FILES = {
    "train.rec": "e6bcb6ffba1ac04ff8a9b1115e650af56ee969c8",
    "train.idx": "dcf7318b2602c06428b9988470c731621716c393",
    "val.rec": "d6c33f799b4d058e82f2cb5bd9a976f69d72d520",
}
PIKACHU_TIMEOUT_S = 8
PIKACHU_GONE = ("The official Pikachu files sit in MXNet's S3 bucket, which has been unreachable since February "
                "2024 (MXNet was retired in September 2023). Make a synthetic Pikachu set offline with: python -m "
                "ssd data synth --out DIR, or download d2l's banana set, its successor, with: python -m ssd data "
                "banana --out DIR")
BANANA_BASE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"
BANANA_ZIP = "banana-detection.zip"
BANANA_SHA1 = "5de26c8fce5ccdea9f91267273464dc968d20d72"
ENA24_BASE_URL = "https://storage.googleapis.com/public-datasets-lila/ena24/"
ENA24_METADATA = "ena24.json"
ENA24_ZIP = "ena24.zip"
#: LILA publishes no checksums for ENA24; integrity is checked by parsing the JSON and by the
#: CRC-32 of every zip member during extraction instead.
ENA24_SHA1: Optional[str] = None


def _join(base_url: str, name: str) -> str:
    return base_url.rstrip("/") + "/" + name


def fetch_pikachu(out_dir: str, *, base_url: Optional[str] = None,
                  progress: Optional[Progress] = None) -> str:
    """Download the official Pikachu RecordIO set (train.rec, train.idx, val.rec) into ``out_dir``.

    Writes ``dataset.json`` (name and class list) so the folder is self-describing. Returns
    ``out_dir``. The MXNet S3 hosting has been unreachable since February 2024; the error then names
    each file's destination and points to ``data synth`` and ``data banana``.
    """
    base = base_url or PIKACHU_BASE_URL
    os.makedirs(out_dir, exist_ok=True)
    with in_progress(out_dir):   # until every file is in place, loaders and pickers refuse the folder
        for name, sha1 in PIKACHU_FILES.items():
            try:
                # the official bucket is gone: fail within seconds there, not after a long timeout
                download(_join(base, name), os.path.join(out_dir, name), sha1=sha1, progress=progress,
                         timeout=30 if base_url else PIKACHU_TIMEOUT_S)
            except DownloadError as err:
                raise DownloadError(
                    f"{err} The Pikachu dataset needs {', '.join(PIKACHU_FILES)} together in "
                    f"{os.path.abspath(out_dir)}. {PIKACHU_GONE}") from None
        atomic_write_json(os.path.join(out_dir, "dataset.json"), {"name": "pikachu", "classes": ["pikachu"]})
    return out_dir


def fetch_banana(out_dir: str, *, base_url: Optional[str] = None,
                 progress: Optional[Progress] = None) -> str:
    """Download d2l's banana-detection zip (SHA-1 checked) and extract it safely into ``out_dir``.

    The zip is kept (it is small, and keeping it makes a rerun skip the download). Returns the
    folder holding ``bananas_train``/``bananas_val`` (``out_dir/banana-detection`` for the
    official archive, else ``out_dir``).
    """
    url = _join(base_url or BANANA_BASE_URL, BANANA_ZIP)
    zip_path = os.path.join(out_dir, BANANA_ZIP)
    os.makedirs(out_dir, exist_ok=True)
    with in_progress(out_dir):
        download(url, zip_path, sha1=BANANA_SHA1, progress=progress)
        safe_extract(zip_path, out_dir)
    inner = os.path.join(out_dir, "banana-detection")
    return inner if os.path.isdir(inner) else out_dir


def fetch_ena24(out_dir: str, images: bool = True, *, base_url: Optional[str] = None,
                progress: Optional[Progress] = None, keep_zip: bool = False) -> str:
    """Download ENA24-detection from LILA: ``ena24.json`` and (with ``images``) the images.

    LILA publishes **no checksums** for these files, so integrity rests on the JSON parsing and
    on zip's per-member CRC-32 during extraction. Images are extracted into ``out_dir/images``
    (a single wrapping folder in the zip is dropped, so paths match the JSON's ``file_name``).
    The 3.6 GB zip is deleted after a successful extraction unless ``keep_zip``; a marker file
    ``.ena24.zip.extracted`` then makes a rerun skip both download and extraction. Returns
    ``out_dir``.
    """
    base = base_url or ENA24_BASE_URL
    os.makedirs(out_dir, exist_ok=True)
    with in_progress(out_dir):
        return _fetch_ena24(out_dir, images, base, progress, keep_zip)


def _fetch_ena24(out_dir: str, images: bool, base: str, progress: Optional[Progress], keep_zip: bool) -> str:
    """``fetch_ena24`` inside its in-progress marker."""
    meta_url = _join(base, ENA24_METADATA)
    meta = os.path.join(out_dir, ENA24_METADATA)
    download(meta_url, meta, sha1=ENA24_SHA1, progress=progress)
    try:
        with open(meta, "r", encoding="utf-8") as fh:
            doc = json.load(fh)
        if not isinstance(doc, dict) or "images" not in doc or "annotations" not in doc:
            raise ValueError("it has no 'images'/'annotations' lists (not COCO Camera Traps)")
    except (ValueError, OSError) as err:
        remove_quietly(meta)
        raise DownloadError(f"the downloaded {meta} is not valid COCO Camera Traps JSON ({err}); it "
                            f"was deleted. {by_hand(meta_url, meta, None)}") from None
    if not images:
        return out_dir
    marker = os.path.join(out_dir, "." + ENA24_ZIP + ".extracted")
    images_dir = os.path.join(out_dir, "images")
    if os.path.isfile(marker) and os.path.isdir(images_dir):
        return out_dir
    zip_url = _join(base, ENA24_ZIP)
    zip_path = os.path.join(out_dir, ENA24_ZIP)
    download(zip_url, zip_path, sha1=ENA24_SHA1, progress=progress)
    files = safe_extract(zip_path, images_dir, strip_top=True)
    atomic_write_json(marker, {"files": len(files), "zip_bytes": os.path.getsize(zip_path)})
    if not keep_zip:
        remove_quietly(zip_path)
    return out_dir


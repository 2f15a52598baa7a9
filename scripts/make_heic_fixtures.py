"""Write the two small HEIC photos the tests read (tests/data/*.heic), once, by hand.

Why a file and not a test-time encode: the decoder we ship (pi-heif) cannot write HEIC, and the
encoder that can (pillow-heif) carries x265, a GPL library we do not ship. Run it in a throwaway
folder so nothing lands in the project's environment:

    .venv/bin/pip install --no-deps --target /tmp/heifenc pillow-heif==1.9.0
    PYTHONPATH=/tmp/heifenc .venv/bin/python scripts/make_heic_fixtures.py

* ``pikachu.heic``: a validation picture of the synthetic Pikachu set, upright, with an EXIF time.
* ``pikachu_rotated.heic``: the same picture stored on its side as a phone does (the pixels turned,
  the HEIF ``irot`` box and EXIF orientation 6 saying how to show it): upright once decoded.
"""
from __future__ import annotations

import os

import pillow_heif
from PIL import Image

from ssd.data.synthetic import render_example

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data")
QUALITY = 40        # keeps each file under 20 KB
WHEN = "2024:05:17 06:42:10"


def main() -> None:
    pillow_heif.register_heif_opener()
    os.makedirs(OUT, exist_ok=True)
    img, _ = render_example(seed=9, index=0, split="val")
    upright = Image.fromarray(img).resize((224, 160))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = WHEN       # DateTimeOriginal
    upright.save(os.path.join(OUT, "pikachu.heic"), quality=QUALITY, exif=exif.tobytes())
    # Orientation 6 means "turn 90° clockwise to show": store the picture turned the other way.
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif[0x0112] = 6
    sideways.save(os.path.join(OUT, "pikachu_rotated.heic"), quality=QUALITY, exif=exif.tobytes())
    for name in ("pikachu.heic", "pikachu_rotated.heic"):
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    main()

"""Rendering detections onto images: class colours, labelled boxes, previews, annotated downloads.

Why it exists: the Detect page, the home page's demo and the downloads draw boxes the same way,
so colours and label placement live in one place. Knows nothing of Streamlit.

* **Boxes in original coordinates, drawn at any scale.** Detection boxes are in the original
  image's pixels; ``draw_detections`` maps them onto any copy (a thumbnail, the full photo). The
  Detect page does not draw into pixels at all on a slider move (``ssd.viz.overlay``);
  full-resolution annotation (``annotated_png``) is only made when a person downloads it.
"""
from __future__ import annotations

import io
import os
import re
import zipfile
from functools import lru_cache
from typing import Any, Dict, List, Optional, Sequence, Tuple

from PIL import Image, ImageDraw, ImageFont

from ssd.viz.colour_vision import readable_text_on


# --------------------------------------------------------------------------------------------
# colours and fonts
# --------------------------------------------------------------------------------------------

# Class i always gets PALETTE[i % n]. The first seven are Okabe & Ito's colour-blind-safe set (no
# black: it vanishes on night photos), ordered so that the classes most often seen together (a
# two-class model; MegaDetector's animal, person, vehicle) stay at least ΔE00 20 apart with normal
# vision and simulated deuteranopia, protanopia and tritanopia (tests/test_colour_access.py; the
# Tableau order before gave orange and green, ΔE00 1.3 for a protanope). Then Tableau-like colours.
# The class name on each box's tag is the cue that does not depend on colour at all.
PALETTE: List[Tuple[int, int, int]] = [
    (86, 180, 233), (213, 94, 0), (240, 228, 66), (0, 158, 115), (0, 114, 178), (204, 121, 167),
    (230, 159, 0),
    (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34),
    (23, 190, 207), (44, 160, 44), (0, 82, 204), (204, 0, 102), (102, 51, 0), (153, 0, 255), (0, 0, 0),
]


#: A box outline's halo, each side, in pixels: black or white (``text_colour_on``), whichever its
#: label's text is, so the outline stands out on dark and light, green and red backgrounds alike.
HALO_PX = 1


def class_colour(class_id: int) -> Tuple[int, int, int]:
    """Stable colour of a class (its index in the model's class list)."""
    return PALETTE[int(class_id) % len(PALETTE)]


def class_colour_hex(class_id: int) -> str:
    return "#%02x%02x%02x" % class_colour(class_id)


def text_colour_on(bg: Tuple[int, int, int]) -> Tuple[int, int, int]:
    """The label's text colour on a tag of ``bg``: black or white by WCAG contrast (at least 4.5:1 on
    every PALETTE colour; a fixed luma cut-off left white text on light green and cyan at 2-3.4:1)."""
    return readable_text_on(bg)


@lru_cache(maxsize=64)
def label_font(size: int):
    try:
        return ImageFont.load_default(size=max(8, int(size)))
    except (TypeError, OSError, ImportError):  # Pillow without FreeType
        return ImageFont.load_default()


# --------------------------------------------------------------------------------------------
# drawing detections
# --------------------------------------------------------------------------------------------


def draw_detections(image: Image.Image, det, scale: float = 1.0, line_width: Optional[int] = None,
                    font_size: Optional[int] = None) -> Image.Image:
    """A copy of ``image`` with ``det``'s boxes: one colour per class, label and score on top.

    ``det.boxes`` are in original pixels; ``scale`` maps them onto ``image`` (a preview of the
    original has ``scale = preview.width / original width``). Lower scores are drawn first so
    the most confident box ends on top.
    """
    img = image.convert("RGB") if image.mode != "RGB" else image.copy()
    if det is None or len(det) == 0:
        return img
    w, h = img.size
    side = max(w, h)
    lw = line_width or max(2, int(round(side / 320)))
    font = label_font(font_size or max(11, int(round(side / 42))))
    draw = ImageDraw.Draw(img)
    for i in range(len(det) - 1, -1, -1):
        cid = int(det.class_ids[i])
        x0, y0, x1, y1 = (float(v) * scale for v in det.boxes[i])
        # a box of negative width or height (a results file may say [x, y, -w, -h]) spans its corners:
        # Pillow's rectangle raises on x1 < x0, which stopped the whole drawing
        x0, x1 = sorted((max(0.0, min(x0, w - 1)), max(0.0, min(x1, w - 1))))
        y0, y1 = sorted((max(0.0, min(y0, h - 1)), max(0.0, min(y1, h - 1))))
        colour = class_colour(cid)
        # the halo: 1 px of the label's text colour either side of the outline, so a box reads on any
        # background (vermillion on vegetation, for a protanope, was the measured weak case)
        draw.rectangle([x0 - HALO_PX, y0 - HALO_PX, x1 + HALO_PX, y1 + HALO_PX], outline=text_colour_on(colour),
                       width=lw + 2 * HALO_PX)
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=lw)
        name = det.classes[cid] if 0 <= cid < len(det.classes) else str(cid)
        text = f"{name} {float(det.scores[i]):.2f}"
        l, t, r, b = draw.textbbox((0, 0), text, font=font)
        tw, th = r - l, b - t
        pad = max(1, lw // 2 + 1)
        ty = y0 - th - 2 * pad if y0 - th - 2 * pad >= 0 else y0 + lw   # above the box, else inside
        tx = min(x0, max(0.0, w - tw - 2 * pad))
        draw.rectangle([tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad], fill=colour)
        draw.text((tx + pad - l, ty + pad - t), text, fill=text_colour_on(colour), font=font)
    return img


def annotated_png(image: Image.Image, det) -> bytes:
    """The original-resolution image with boxes, as PNG bytes (for downloads)."""
    buf = io.BytesIO()
    draw_detections(image, det).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


_NOT_IN_FILE_NAMES = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"/\\|?*\u200e\u200f\u202a-\u202e\u2066-\u2069]')


def annotated_name(name: str) -> str:
    """The download name for an upload's annotated image: its stem only, safe on any system.

    Why: the name is whatever the browser (or a script posing as one) sent. Windows unzippers split
    on ``\\`` and read ``C:`` as a drive, so ``..\\..\\Startup\\x.jpg`` in our ZIP could land
    outside the folder it is unpacked into; control and direction characters disguise a name.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = _NOT_IN_FILE_NAMES.sub("_", os.path.splitext(base)[0]).lstrip(".")
    return f"{stem or 'image'}_detections.png"


def annotated_zip(items: Sequence[Tuple[str, Image.Image, Any]]) -> bytes:
    """ZIP of ``annotated_png`` for each ``(name, full image, detections)``; names made unique."""
    buf = io.BytesIO()
    used: Dict[str, int] = {}
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, image, det in items:
            arc = annotated_name(name)
            if arc in used:
                used[arc] += 1
                stem, ext = os.path.splitext(arc)
                arc = f"{stem}_{used[arc]}{ext}"
            else:
                used[arc] = 0
            zf.writestr(arc, annotated_png(image, det))
    return buf.getvalue()


def boxes_summary(det) -> str:
    """What a picture's boxes show, in words ("2 animal, 1 person"; "no boxes"): the text equivalent
    of an image of detections, for its caption (people who cannot see the picture or its colours)."""
    if det is None or len(det) == 0:
        return "no boxes"
    counts: Dict[str, int] = {}
    for cid in det.class_ids:
        cid = int(cid)
        name = det.classes[cid] if 0 <= cid < len(det.classes) else str(cid)
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))

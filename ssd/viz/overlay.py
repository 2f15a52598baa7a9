"""Detections as a vector layer over a picture that does not change: what a slider move sends.

Why it exists: drawing the boxes into the pixels makes every confidence-slider move a new image
(encode on the server, transfer, decode in the browser: hundreds of milliseconds for a batch of
photos). Here the picture is encoded once at display size (``display_jpeg``) and stays the same
file, so the browser keeps it; a move only sends the boxes, a few hundred bytes of SVG
(``detections_svg``) that the page lays over the picture. Knows nothing of Streamlit.
"""
from __future__ import annotations

import html
import io
from typing import Tuple

from PIL import Image

from ssd.viz.drawing import HALO_PX, class_colour, class_colour_hex, label_font, text_colour_on

DISPLAY_SIDE = 1024            # longest side of the picture a page shows (sharp on a phone's 3x screen)
DISPLAY_QUALITY = 85           # JPEG quality: invisible loss at display size, a tenth of a PNG's bytes
LINE_PX = 2                    # box outline in screen pixels, whatever the picture's scale
FONT_SHARE = 1 / 28            # label text height as a share of the picture's longest side


def display_jpeg(image: Image.Image, original_size: Tuple[int, int], max_side: int = DISPLAY_SIDE,
                 quality: int = DISPLAY_QUALITY) -> Tuple[bytes, Tuple[int, int], float]:
    """``(JPEG bytes, their (width, height), display pixels per original pixel)``.

    Never enlarged: the browser scales a small picture up, and the SVG over it scales with it.
    """
    s = min(1.0, max_side / max(image.size))
    img = image.convert("RGB") if image.mode != "RGB" else image
    if s < 1.0:
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue(), img.size, img.width / float(original_size[0])


def _label(x0: float, y0: float, text: str, cid: int, size: Tuple[int, int], font_px: float) -> str:
    """A filled tag with ``text``, above the box's top-left corner (inside it at the top edge)."""
    w, h = size
    tw = label_font(max(8, round(font_px))).getlength(text)
    pad = font_px * 0.2
    bw, bh = tw + 2 * pad, font_px * 1.25
    ty = y0 - bh if y0 - bh >= 0 else y0
    tx = min(max(0.0, x0), max(0.0, w - bw))
    fg = "#%02x%02x%02x" % text_colour_on(class_colour(cid))
    return (f'<rect x="{tx:.1f}" y="{ty:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="{class_colour_hex(cid)}"/>'
            f'<text x="{tx + pad:.1f}" y="{ty + bh - 0.3 * font_px:.1f}" font-size="{font_px:.1f}" fill="{fg}" '
            f'textLength="{tw:.1f}" lengthAdjust="spacingAndGlyphs">{html.escape(text)}</text>')


def _outline(x0: float, y0: float, x1: float, y1: float, cid: int) -> str:
    """A box's outline over its halo: a stroke ``HALO_PX`` wider each side in the label's text colour
    (strokes are centred on the path, in screen pixels: the halo shows 1 px outside and inside)."""
    geometry = f'x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" fill="none"'
    halo = "#%02x%02x%02x" % text_colour_on(class_colour(cid))
    return (f'<rect {geometry} stroke="{halo}" stroke-width="{LINE_PX + 2 * HALO_PX}" '
            f'vector-effect="non-scaling-stroke"/>'
            f'<rect {geometry} stroke="{class_colour_hex(cid)}" stroke-width="{LINE_PX}" '
            f'vector-effect="non-scaling-stroke"/>')


def detections_svg(det, scale: float, size: Tuple[int, int]) -> str:
    """An ``<svg>`` of ``size`` (the display picture's pixels) with ``det``'s boxes and labels.

    ``det.boxes`` are in original pixels and ``scale`` maps them onto the picture; the most
    confident box is drawn last (on top). Class names come from a model folder: escaped.
    """
    w, h = size
    font_px = max(w, h) * FONT_SHARE
    parts = []
    for i in range(len(det) - 1, -1, -1):
        cid = int(det.class_ids[i])
        x0, y0, x1, y1 = (float(v) * scale for v in det.boxes[i])
        x0, x1 = max(0.0, min(x0, w)), max(0.0, min(x1, w))
        y0, y1 = max(0.0, min(y0, h)), max(0.0, min(y1, h))
        name = det.classes[cid] if 0 <= cid < len(det.classes) else str(cid)
        parts.append(_outline(x0, y0, x1, y1, cid))
        parts.append(_label(x0, y0, f"{name} {float(det.scores[i]):.2f}", cid, size, font_px))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
            f'preserveAspectRatio="none" role="img" aria-label="{len(det)} detection(s)" '
            f'style="display:block;font-family:sans-serif">{"".join(parts)}</svg>')

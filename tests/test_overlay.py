"""The Detect page's pictures: encoded once at display size, boxes sent as SVG over them."""
from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image


class _Det:
    """The part of RawDetections the overlay reads."""

    def __init__(self, boxes, scores, class_ids, classes):
        self.boxes, self.scores = np.asarray(boxes, float), np.asarray(scores, float)
        self.class_ids, self.classes = np.asarray(class_ids), classes

    def __len__(self) -> int:
        return len(self.scores)


def test_display_jpeg_shrinks_big_photos_and_never_enlarges():
    from ssd.viz.overlay import display_jpeg

    big = Image.new("RGB", (4000, 3000), (10, 200, 30))
    data, size, scale = display_jpeg(big, (4000, 3000), max_side=1024)
    assert size == (1024, 768) and abs(scale - 1024 / 4000) < 1e-9
    assert Image.open(io.BytesIO(data)).format == "JPEG" and Image.open(io.BytesIO(data)).size == size
    small = Image.new("RGB", (256, 256))
    _, size, scale = display_jpeg(small, (640, 640))        # a preview of a 640 px original
    assert size == (256, 256) and scale == 0.4


def test_detections_svg_scales_boxes_escapes_names_and_draws_best_last():
    from ssd.viz.overlay import detections_svg

    det = _Det([[100, 50, 300, 250], [0, 0, 40, 40]], [0.9, 0.3], [0, 1], ["cat", '<b onload="x">dog</b>'])
    svg = detections_svg(det, 0.5, (200, 150))
    assert svg.startswith("<svg") and 'viewBox="0 0 200 150"' in svg
    outlines = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="none"', svg)
    # low score first; each box twice: its halo, then its outline over it
    assert [tuple(map(float, o)) for o in outlines] == [(0, 0, 20, 20)] * 2 + [(50, 25, 100, 100)] * 2
    assert "<b" not in svg and "&lt;b onload=&quot;x&quot;&gt;dog&lt;/b&gt; 0.30" in svg
    assert "cat 0.90" in svg
    empty = detections_svg(_Det(np.zeros((0, 4)), [], [], ["cat"]), 1.0, (10, 10))
    assert "<rect" not in empty


def test_labels_stay_inside_the_picture():
    from ssd.viz.overlay import detections_svg

    det = _Det([[190, 0, 200, 10]], [0.5], [0], ["a rather long class name"])   # top-right corner
    svg = detections_svg(det, 1.0, (200, 100))
    tag = re.search(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="#', svg)
    x, y, w, h = map(float, tag.groups())
    assert x >= 0 and y >= 0 and x + w <= 200.01 and y + h <= 100


VEGETATION = (96, 112, 58)      # a green-brown photo, where vermillion is weak for a protanope


def test_drawn_boxes_have_a_halo_of_their_label_text_colour():
    from ssd.viz.drawing import class_colour, draw_detections, text_colour_on

    img = Image.new("RGB", (200, 200), VEGETATION)
    for cid in (1, 4):                   # vermillion (black text), blue (white text)
        colour, halo = class_colour(cid), text_colour_on(class_colour(cid))
        det = _Det([[50, 60, 150, 160]], [0.9], [cid], ["a", "b", "c", "d", "e"])
        px = draw_detections(img, det, line_width=2).load()
        # left and right edges, at mid-height: background | halo | box outline (2 px) | halo | background
        assert [px[x, 110] for x in range(48, 54)] == [VEGETATION, halo, colour, colour, halo, VEGETATION], cid
        assert [px[x, 110] for x in range(147, 153)] == [VEGETATION, halo, colour, colour, halo, VEGETATION], cid
        # the bottom edge likewise
        assert [px[100, y] for y in range(157, 163)] == [VEGETATION, halo, colour, colour, halo, VEGETATION], cid


def test_svg_boxes_have_a_halo_stroke_under_the_outline():
    from ssd.viz.drawing import class_colour, class_colour_hex, text_colour_on
    from ssd.viz.overlay import LINE_PX, detections_svg

    det = _Det([[100, 50, 300, 250], [0, 0, 40, 40]], [0.9, 0.3], [1, 4], ["a", "b", "c", "d", "e"])
    svg = detections_svg(det, 0.5, (200, 150))
    outlines = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="none" '
                          r'stroke="(#[0-9a-f]{6})" stroke-width="(\d+)"', svg)
    for cid, box in ((4, ("0.0", "0.0", "20.0", "20.0")), (1, ("50.0", "25.0", "100.0", "100.0"))):
        halo = "#%02x%02x%02x" % text_colour_on(class_colour(cid))
        mine = [o for o in outlines if o[:4] == box]
        # the halo (the label's text colour, 1 px either side of the outline) first, the outline over it
        assert mine == [(*box, halo, str(LINE_PX + 2)), (*box, class_colour_hex(cid), str(LINE_PX))], mine

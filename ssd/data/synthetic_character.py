"""The synthetic Pikachu set's character: a yellow cartoon drawn with PIL on its own transparent sprite.

Head, pointed ears with black tips, red cheeks, eyes, body, arms, feet and a lightning-bolt tail,
with proportions, pose and expression drawn from the caller's random generator. The sprite is
drawn alone so that ``ssd.data.synthetic`` can measure the exact box from its pixels after
rotation, scaling and placement. Every random draw happens in a fixed order: a seed always
reproduces the same picture, byte for byte.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

ALPHA_ON = 128          # a sprite pixel counts as "character" when at least half covered

Point = Tuple[float, float]
Colour = Tuple[int, int, int]
_BLACK: Colour = (24, 20, 20)


# --------------------------------------------------------------------------------------------
# geometry helpers (unit coordinates: the character stands in the unit square, y down)
# --------------------------------------------------------------------------------------------

def _ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 28) -> List[Point]:
    """Polygon of a rotated ellipse (PIL's ellipse cannot rotate)."""
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    ca, sa = math.cos(angle), math.sin(angle)
    x, y = rx * np.cos(t), ry * np.sin(t)
    return list(zip((cx + x * ca - y * sa).tolist(), (cy + x * sa + y * ca).tolist()))


def _leaf(base: Point, angle: float, length: float, width: float, t0: float = 0.0, n: int = 14) -> List[Point]:
    """A pointed ear: half-width ``width * (1 - t**1.6)`` along its axis, from ``t0`` to the tip.

    ``angle`` is measured from straight up, clockwise positive. ``t0 > 0`` gives only the
    end of the ear — used for the black tip so it matches the ear outline exactly.
    """
    ax, ay = math.sin(angle), -math.cos(angle)      # axis direction (up = -y)
    nx, ny = -ay, ax                                  # normal
    ts = np.linspace(t0, 1.0, n)
    half = width * (1.0 - ts ** 1.6) * (0.75 + 0.25 * np.sin(np.pi * np.minimum(ts * 1.4, 1.0)))
    px = base[0] + ax * ts * length
    py = base[1] + ay * ts * length
    left = list(zip((px + nx * half).tolist(), (py + ny * half).tolist()))
    right = list(zip((px - nx * half).tolist(), (py - ny * half).tolist()))
    return left + right[::-1]


def _ribbon(points: Sequence[Point], widths: Sequence[float]) -> List[Point]:
    """A thick polyline as one polygon (the zigzag tail), mitring the joints."""
    pts = np.asarray(points, dtype=np.float64)
    seg = np.diff(pts, axis=0)
    seg /= np.linalg.norm(seg, axis=1, keepdims=True)
    normals = np.stack([-seg[:, 1], seg[:, 0]], axis=1)
    vn = np.empty_like(pts)
    vn[0], vn[-1] = normals[0], normals[-1]
    for i in range(1, len(pts) - 1):
        m = normals[i - 1] + normals[i]
        m /= np.linalg.norm(m)
        vn[i] = m / max(0.35, float(np.dot(m, normals[i])))   # mitre, bounded at sharp turns
    w = np.asarray(widths, dtype=np.float64)[:, None] / 2
    left, right = pts + vn * w, pts - vn * w
    return [tuple(p) for p in left.tolist()] + [tuple(p) for p in right[::-1].tolist()]



def jitter(rng: np.random.Generator, c: Colour, amount: int) -> Colour:
    """``c`` with each channel moved by up to ``amount`` (one integer draw of three values)."""
    return tuple(int(v) for v in np.clip(np.asarray(c) + rng.integers(-amount, amount + 1, 3), 0, 255))


# --------------------------------------------------------------------------------------------
# the character
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Palette:
    yellow: Colour
    line: Colour
    brown: Colour
    red: Colour


@dataclass(frozen=True)
class _Build:
    """One character's proportions, in unit coordinates."""

    head_rx: float
    head_ry: float
    head_cy: float
    body_rx: float
    body_ry: float
    body_cy: float
    feet_y: float
    ear_len: float
    ear_w: float
    ear_l_ang: float
    ear_r_ang: float


class _Pen:
    """Draws unit-square shapes on the sprite canvas (the unit square scaled by 0.8, plus a margin)."""

    def __init__(self, img: Image.Image, line: Colour) -> None:
        px = img.size[0]
        self.draw = ImageDraw.Draw(img)
        self.s, self.off = px * 0.8, px * 0.1
        self.line = line
        self.lw = max(1, int(round(self.s * 0.012)))

    def P(self, pts: Sequence[Point]) -> List[Point]:
        return [(self.off + x * self.s, self.off + y * self.s) for x, y in pts]

    def shape(self, pts: Sequence[Point], fill: Colour, outline: bool = True) -> None:
        self.draw.polygon(self.P(pts), fill=fill + (255,), outline=(self.line + (255,)) if outline else None,
                          width=self.lw if outline else 1)


def draw_character(rng: np.random.Generator, px: int) -> Image.Image:
    """Draw the character on a transparent ``px``×``px`` RGBA canvas (unit square scaled by 0.8 + margin)."""
    img = Image.new("RGBA", (px, px), (0, 0, 0, 0))
    pal = _Palette(yellow=jitter(rng, (250, 214, 36), 14), line=jitter(rng, (74, 46, 20), 14),
                   brown=jitter(rng, (128, 80, 38), 16), red=jitter(rng, (228, 52, 40), 16))
    pen = _Pen(img, pal.line)
    b = _build(rng)
    _draw_tail(rng, pen, pal, b)
    _draw_body(rng, pen, pal, b)
    _draw_ears_and_head(rng, pen, pal, b)
    _draw_eyes_and_cheeks(rng, pen, pal, b)
    _draw_nose_and_mouth(rng, pen, b)
    return img


def _build(rng: np.random.Generator) -> _Build:
    """Proportions vary per character."""
    head_rx = rng.uniform(0.19, 0.24)
    head_ry = head_rx * rng.uniform(0.78, 0.9)
    head_cy = rng.uniform(0.36, 0.40)
    body_rx = rng.uniform(0.17, 0.22)
    body_ry = rng.uniform(0.2, 0.25)
    body_cy = head_cy + head_ry + body_ry * 0.55
    feet_y = min(0.985, body_cy + body_ry * 0.95)
    ear_len = rng.uniform(0.27, 0.36)
    ear_w = rng.uniform(0.045, 0.065)
    ear_l_ang = -rng.uniform(0.30, 0.95)
    ear_r_ang = rng.uniform(0.30, 0.95)
    return _Build(head_rx, head_ry, head_cy, body_rx, body_ry, body_cy, feet_y, ear_len, ear_w, ear_l_ang, ear_r_ang)


def _draw_tail(rng: np.random.Generator, pen: _Pen, pal: _Palette, b: _Build) -> None:
    """The zigzag tail: behind the body, from its lower right up to the right, brown at its root."""
    bx, by = 0.5 + b.body_rx * 0.7, b.body_cy + b.body_ry * 0.35
    tail_h = rng.uniform(0.35, 0.5)
    zig = [(bx, by), (bx + 0.12, by - 0.08), (bx + 0.07, by - 0.14),
           (bx + 0.22, by - tail_h * 0.6), (bx + 0.16, by - tail_h * 0.7), (bx + 0.3, by - tail_h)]
    widths = [0.05, 0.06, 0.07, 0.1, 0.12, 0.14]
    pen.shape(_ribbon(zig, widths), pal.yellow)
    pen.shape(_ribbon(zig[:2], widths[:2]), pal.brown)


def _draw_body(rng: np.random.Generator, pen: _Pen, pal: _Palette, b: _Build) -> None:
    """Feet, body, arms."""
    for sx in (-1, 1):
        pen.shape(_ellipse(0.5 + sx * b.body_rx * 0.55, b.feet_y - 0.03, 0.075, 0.035, sx * 0.2), pal.yellow)
    pen.shape(_ellipse(0.5, b.body_cy, b.body_rx, b.body_ry), pal.yellow)
    arm_y = b.body_cy - b.body_ry * rng.uniform(0.15, 0.45)
    for sx in (-1, 1):
        pen.shape(_ellipse(0.5 + sx * b.body_rx * 0.55, arm_y, 0.065, 0.032, sx * rng.uniform(0.2, 0.9)),
                  pal.yellow)


def _draw_ears_and_head(rng: np.random.Generator, pen: _Pen, pal: _Palette, b: _Build) -> None:
    """Ears (black tips), then the head over their bases."""
    for sx, ang in ((-1, b.ear_l_ang), (1, b.ear_r_ang)):
        base = (0.5 + sx * b.head_rx * 0.5, b.head_cy - b.head_ry * 0.55)
        pen.shape(_leaf(base, ang, b.ear_len, b.ear_w), pal.yellow)
        pen.shape(_leaf(base, ang, b.ear_len, b.ear_w, t0=rng.uniform(0.55, 0.7)), _BLACK, outline=False)
    pen.shape(_ellipse(0.5, b.head_cy, b.head_rx, b.head_ry, rng.uniform(-0.08, 0.08), n=36), pal.yellow)


def _draw_eyes_and_cheeks(rng: np.random.Generator, pen: _Pen, pal: _Palette, b: _Build) -> None:
    """Eyes (open with a highlight, or closed arcs) and the red cheeks."""
    d, P, black = pen.draw, pen.P, _BLACK
    ex, ey, er = b.head_rx * 0.42, b.head_cy - b.head_ry * 0.12, b.head_rx * 0.16
    closed = rng.random() < 0.12
    for sx in (-1, 1):
        cx = 0.5 + sx * ex
        if closed:
            d.arc(P([(cx - er, ey - er), (cx + er, ey + er)]), 200, 340, fill=black + (255,), width=max(1, pen.lw))
        else:
            d.ellipse(P([(cx - er, ey - er), (cx + er, ey + er)]), fill=black + (255,))
            hr = er * 0.42
            d.ellipse(P([(cx - er * 0.35 - hr, ey - er * 0.35 - hr), (cx - er * 0.35 + hr, ey - er * 0.35 + hr)]),
                      fill=(255, 255, 255, 255))
        ccx, ccy, cr = 0.5 + sx * b.head_rx * 0.72, b.head_cy + b.head_ry * 0.32, b.head_rx * 0.2
        d.ellipse(P([(ccx - cr, ccy - cr), (ccx + cr, ccy + cr)]), fill=pal.red + (255,))


def _draw_nose_and_mouth(rng: np.random.Generator, pen: _Pen, b: _Build) -> None:
    """The nose, and a smile or (three times in ten) an open mouth with a pink tongue."""
    d, P, black = pen.draw, pen.P, _BLACK
    ny = b.head_cy + b.head_ry * 0.08
    pen.shape(_ellipse(0.5, ny, b.head_rx * 0.04, b.head_rx * 0.028), black, outline=False)
    my = b.head_cy + b.head_ry * 0.3
    mw = b.head_rx * 0.13
    if rng.random() < 0.3:   # open mouth: a dark half-disc with a pink tongue
        d.chord(P([(0.5 - mw * 1.3, my - mw * 1.1), (0.5 + mw * 1.3, my + mw * 1.5)]), 0, 180,
                fill=(120, 28, 30, 255))
        d.ellipse(P([(0.5 - mw * 0.7, my + mw * 0.55), (0.5 + mw * 0.7, my + mw * 1.3)]),
                  fill=(236, 120, 130, 255))
    else:
        d.line(P([(0.5 - 1.6 * mw, my), (0.5 - 0.8 * mw, my + 0.5 * mw), (0.5, my),
                  (0.5 + 0.8 * mw, my + 0.5 * mw), (0.5 + 1.6 * mw, my)]), fill=black + (255,), width=pen.lw)


def sprite(rng: np.random.Generator, target: float) -> Image.Image:
    """The posed character, cropped to its pixels, with its larger side about ``target`` px.

    Drawn at twice the final resolution and reduced, which antialiases the edges.
    """
    draw_px = int(max(64, min(600, target * 2.4)))
    img = draw_character(rng, draw_px)
    img = img.crop(img.getbbox())           # less area to rotate: rotation is the costly step
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    angle = float(rng.normal(0, 12)) if rng.random() < 0.8 else float(rng.uniform(-50, 50))
    img = img.rotate(angle, resample=Image.BILINEAR, expand=True)
    box = img.getchannel("A").point(lambda a: 255 if a >= ALPHA_ON else 0).getbbox()
    img = img.crop(box)
    squash = math.exp(rng.uniform(-0.22, 0.22))
    w, h = img.size
    k = target / max(w * squash, h)
    new = (max(3, int(round(w * squash * k))), max(3, int(round(h * k))))
    return img.resize(new, Image.BILINEAR, reducing_gap=None)

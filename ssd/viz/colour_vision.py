"""Colour measures for accessible figures: WCAG contrast, colour-blindness simulation, colour distance.

Why it exists: about 1 in 12 men has a colour-vision deficiency, and the app tells things apart by
colour (classes on a camera-trap photo, positive vs mined-negative anchors, TP vs FP). These
functions let the palettes be *checked* rather than trusted: tests assert that the colours that
must be told apart stay apart under simulated deuteranopia, protanopia and tritanopia, and that
label text is readable on its tag. Plain numpy; no colour-science dependency.

* **Simulation**: Machado, Oliveira & Fernandes (2009), "A Physiologically-based Model for
  Simulation of Color Vision Deficiency", severity 1.0 (full dichromacy), applied to linear RGB.
* **Distance**: CIEDE2000 (ΔE00) in CIELAB (D65). Chosen over ΔE76 because ΔE76 overstates
  differences between saturated colours (blue especially) — exactly the colours of a palette —
  while ΔE00 tracks perceived difference; 2.3 is a just-noticeable difference, and
  ``MIN_DELTA_E`` (20) asks for colours that differ at a glance on a thin box outline. (20 is
  about what the best three Okabe-Ito colours keep under all three simulations: 23.8.)
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple, Union

import numpy as np

Colour = Union[str, Tuple[float, float, float], Tuple[int, int, int]]

MIN_CONTRAST = 4.5      # WCAG 2 AA for normal-size text
MIN_DELTA_E = 20.0      # ΔE00 between colours that must be told apart, in every simulated vision

MACHADO_2009: Dict[str, np.ndarray] = {
    "protanopia": np.array([[0.152286, 1.052583, -0.204868],
                            [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968],
                              [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779],
                            [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
VISIONS = ("normal",) + tuple(MACHADO_2009)


def rgb01(colour: Colour) -> np.ndarray:
    """Any matplotlib colour or 0-255 RGB triple as sRGB in [0, 1] (matplotlib only for names:
    the Detect page's drawing imports this module and should not pay for matplotlib)."""
    if isinstance(colour, tuple) and any(isinstance(v, int) and not isinstance(v, bool) for v in colour) \
            and max(colour) > 1:
        return np.asarray(colour, dtype=float) / 255.0
    from matplotlib.colors import to_rgb

    return np.asarray(to_rgb(colour), dtype=float)


def _linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def relative_luminance(colour: Colour) -> float:
    """WCAG 2 relative luminance (0 black .. 1 white)."""
    return float(_linear(rgb01(colour)) @ np.array([0.2126, 0.7152, 0.0722]))


def contrast_ratio(a: Colour, b: Colour) -> float:
    """WCAG 2 contrast ratio between two colours (1 .. 21)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_text_on(bg: Colour) -> Tuple[int, int, int]:
    """Black or white, whichever contrasts more with ``bg`` (WCAG): the text colour of a label tag."""
    return (0, 0, 0) if contrast_ratio(bg, (0, 0, 0)) >= contrast_ratio(bg, (255, 255, 255)) else (255, 255, 255)


def simulate(colour: Colour, vision: str) -> np.ndarray:
    """``colour`` as a person with ``vision`` ("normal" or a key of MACHADO_2009) sees it, sRGB [0, 1]."""
    srgb = rgb01(colour)
    if vision == "normal":
        return srgb
    return _srgb(MACHADO_2009[vision] @ _linear(srgb))


def lab(srgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] to CIELAB (D65 white)."""
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = m @ _linear(np.asarray(srgb, dtype=float)) / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> float:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005 formulation)."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar ** 7 / (c_bar ** 7 + 25.0 ** 7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    dh = h2p - h1p
    dh = 0.0 if c1p * c2p == 0 else (dh - 360 if dh > 180 else dh + 360 if dh < -180 else dh)
    d_l, d_c = l2 - l1, c2p - c1p
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    l_bar, c_barp = (l1 + l2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_bar = h_sum if c1p * c2p == 0 else ((h_sum + 360) / 2 if abs(h1p - h2p) > 180 and h_sum < 360
                                          else (h_sum - 360) / 2 if abs(h1p - h2p) > 180 else h_sum / 2)
    t = (1 - 0.17 * np.cos(np.radians(h_bar - 30)) + 0.24 * np.cos(np.radians(2 * h_bar))
         + 0.32 * np.cos(np.radians(3 * h_bar + 6)) - 0.20 * np.cos(np.radians(4 * h_bar - 63)))
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / np.sqrt(20 + (l_bar - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_barp, 1 + 0.015 * c_barp * t
    r_t = (-2 * np.sqrt(c_barp ** 7 / (c_barp ** 7 + 25.0 ** 7))
           * np.sin(np.radians(60 * np.exp(-(((h_bar - 275) / 25) ** 2)))))
    return float(np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2
                         + r_t * (d_c / s_c) * (d_h / s_h)))


def seen_distance(a: Colour, b: Colour, vision: str) -> float:
    """ΔE00 between ``a`` and ``b`` as seen with ``vision``."""
    return delta_e2000(lab(simulate(a, vision)), lab(simulate(b, vision)))


def worst_distance(colours: Sequence[Colour]) -> Tuple[float, str, int, int]:
    """The smallest ΔE00 between any two of ``colours`` over every vision: (ΔE, vision, i, j)."""
    worst = (float("inf"), "", -1, -1)
    for vision in VISIONS:
        for i in range(len(colours)):
            for j in range(i + 1, len(colours)):
                worst = min(worst, (seen_distance(colours[i], colours[j], vision), vision, i, j))
    return worst

"""Detection results in the formats people exchange: MegaDetector batch JSON and CSV.

The MegaDetector batch format (v1.4) is what camera-trap tools such as Timelapse read:
boxes are ``[x_min, y_min, width, height]`` normalized to the image, categories are
string ids starting at "1", and a file that could not be processed has ``failure`` set.
Both the CLI and the app write through these functions.
"""
from __future__ import annotations

import csv
import io
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ssd.inference.detector import RawDetections

FORMAT_VERSION = "1.4"


def megadetector_json(results: Sequence[Tuple[str, Optional[RawDetections], Optional[str]]],
                      classes: Sequence[str], model_name: str, threshold: float) -> Dict[str, Any]:
    """``results`` is ``(file, detections or None, failure message or None)`` per image."""
    images: List[Dict[str, Any]] = []
    for file, det, failure in results:
        entry: Dict[str, Any] = {"file": file}
        if det is None:
            entry["failure"] = failure or "unknown failure"
            entry["detections"] = []
        else:
            w, h = det.image_size
            entry["width"], entry["height"] = w, h
            entry["detections"] = [
                {"category": str(int(c) + 1), "conf": round(float(s), 4),
                 "bbox": [round(float(b[0]) / w, 4), round(float(b[1]) / h, 4),
                          round(float(b[2] - b[0]) / w, 4), round(float(b[3] - b[1]) / h, 4)]}
                for c, s, b in zip(det.class_ids, det.scores, det.boxes)]
            entry["max_detection_conf"] = round(float(det.scores.max()), 4) if len(det) else 0.0
            entry["failure"] = None
        images.append(entry)
    return {
        "info": {"format_version": FORMAT_VERSION, "detector": f"ssd-studio:{model_name}",
                 "detection_completion_time": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "detector_metadata": {"typical_detection_threshold": threshold}},
        "detection_categories": {str(i + 1): name for i, name in enumerate(classes)},
        "images": images,
    }


def detections_csv(results: Sequence[Tuple[str, Optional[RawDetections], Optional[str]]]) -> str:
    """One row per detection (and one per failed file) with boxes in pixels."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "class", "score", "xmin", "ymin", "xmax", "ymax", "image_width", "image_height", "error"])
    for file, det, failure in results:
        if det is None:
            w.writerow([file, "", "", "", "", "", "", "", "", failure or ""])
            continue
        for r in det.records():
            b = r["box"]
            w.writerow([file, r["class"], f"{r['score']:.4f}", f"{b[0]:.1f}", f"{b[1]:.1f}", f"{b[2]:.1f}",
                        f"{b[3]:.1f}", det.image_size[0], det.image_size[1], ""])
    return buf.getvalue()


def text_table(results: Sequence[Tuple[str, Optional[RawDetections], Optional[str]]]) -> str:
    """The CLI's stdout table."""
    rows = [("file", "class", "score", "box (xmin, ymin, xmax, ymax) px")]
    for file, det, _ in results:
        if det is None:
            continue
        if not len(det):
            rows.append((file, "-", "-", "no detection above threshold"))
        for r in det.records():
            rows.append((file, r["class"], f"{r['score']:.3f}", "(" + ", ".join(f"{v:.0f}" for v in r["box"]) + ")"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}" for r in rows)

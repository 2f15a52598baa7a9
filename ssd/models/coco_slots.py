"""torchvision's COCO class slots: 91 of them, COCO's category ids with "N/A" where an id is unused.

torchvision's COCO detectors predict slot 0 = background and slots 1–90 = COCO category ids, ten of
which name no category. Our detectors have background + the 80 real classes, in the same order
(which is also GluonCV's ``COCODetection.CLASSES``): converting a checkpoint keeps slot 0 and the
80 named slots and drops the ten "N/A" ones.
"""
from __future__ import annotations

from typing import List, Sequence

NOT_A_CLASS = "N/A"
TORCHVISION_COCO_SLOTS: List[str] = [
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", NOT_A_CLASS, "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", NOT_A_CLASS, "backpack", "umbrella",
    NOT_A_CLASS, NOT_A_CLASS, "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", NOT_A_CLASS,
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", NOT_A_CLASS,
    "dining table", NOT_A_CLASS, NOT_A_CLASS, "toilet", NOT_A_CLASS, "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", NOT_A_CLASS, "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
]


def kept_slots(slots: Sequence[str] = TORCHVISION_COCO_SLOTS) -> List[int]:
    """Slot indices a conversion keeps, in our order: background first, then every named class."""
    return [0] + [i for i, name in enumerate(slots) if i and name != NOT_A_CLASS]


def coco_classes(slots: Sequence[str] = TORCHVISION_COCO_SLOTS) -> List[str]:
    """The 80 class names our converted COCO detectors carry (background excluded)."""
    return [slots[i] for i in kept_slots(slots)[1:]]

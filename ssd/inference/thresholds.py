"""Every confidence and overlap default of detection, each named once.

Why one module: the same numbers used to be written in the CLI, the pages, the detector and the
results writer, and they drifted (the CLI suggested 0.5 where the Camera traps page wrote 0.2).
Everything that filters, writes or evaluates detections reads its default from here.
"""
from __future__ import annotations

#: Lowest score written to a results file: MegaDetector's own floor, so a reader can lower the
#: threshold later without running the network again.
RESULTS_FLOOR = 0.005
#: Lowest score kept when evaluating (mAP) or when the Learn pages draw a precision-recall curve:
#: the VOC evaluation convention.
EVAL_FLOOR = 0.01
#: The threshold a results file suggests to its readers (``typical_detection_threshold``), the
#: Camera traps page's starting value and the CLI's ``--threshold``: a season's review wants recall.
TYPICAL_THRESHOLD = 0.2
#: The Detect page's starting slider: one photo at a time, where fewer, surer boxes read better.
SHOWN_THRESHOLD = 0.5
#: IoU above which non-maximum suppression drops the weaker of two boxes of one class (SSD paper).
DEFAULT_NMS = 0.45
#: Most detections written per image (the highest scores): SSD-style decoders return hundreds of
#: near-floor candidates per image, which would grow a season's file by kilobytes per image for
#: boxes nobody looks at; the SSD paper keeps 200.
MAX_DETECTIONS = 100

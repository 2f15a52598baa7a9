"""Why an image, annotation or box was left out of a dataset, as ``DatasetSplits.skipped`` spells it.

``skipped`` maps a reason to a count; the loaders, the decode-once cache, the summary page and the
tests all use these names, so they agree on the spelling. Reasons starting ``NOTE_`` count
something kept (a box clipped to its image, a size that differs from the JSON) so it is visible.
"""
from __future__ import annotations

SKIP_MISSING = "image file missing"
SKIP_CORRUPT = "corrupt image"
SKIP_CROWD = "crowd region (iscrowd: not trained on; detections in it ignored by evaluation)"
SKIP_NO_BBOX = "annotation without bbox (image-level label)"
SKIP_BAD_BOX = "box with non-positive size"
SKIP_MALFORMED_BOX = "malformed bbox"
SKIP_OUTSIDE = "box outside image"
NOTE_CLIPPED = "box clipped"   # the box is kept (clipped to the image); counted so it is visible
SKIP_UNKNOWN_IMAGE = "annotation for unknown image"
SKIP_UNKNOWN_CATEGORY = "annotation with unknown category"
SKIP_DUPLICATE_IMAGE = "duplicate image id"
NOTE_SAME_FILE = "file listed under two image ids (merged)"   # its boxes join the first listing
NOTE_SIZE_MISMATCH = "image size differs from JSON"
SKIP_CATEGORY_PREFIX = "category without boxes: "
SKIP_OUTSIDE_FOLDER = "file_name outside the image folder (refused)"
# Pascal VOC XML folders (ssd.data.voc)
SKIP_XML_REFUSED = "annotation XML refused (declares a DOCTYPE or entities, or is too large)"
SKIP_XML_UNREADABLE = "annotation XML unreadable or not well-formed"
SKIP_XML_NOT_VOC = "XML file that is not a VOC annotation"
SKIP_NO_NAME = "object without a class name"
SKIP_NOT_IN_SPLIT = "annotation listed in no split file of ImageSets/Main (left out)"
SKIP_LISTED_NO_XML = "split file entry without an annotation XML"
NOTE_SIZE_MISMATCH_XML = "image size differs from XML"
NOTE_DIFFICULT = "difficult object (trained on; ignored by evaluation)"
NOTE_TRUNCATED = "truncated object (kept; information only)"

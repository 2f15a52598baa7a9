"""One Pascal VOC annotation file (LabelImg, CVAT's "PASCAL VOC 1.1", the VOC2007/2012 sets), read safely.

A dataset's XML comes from anyone, so it is parsed with the standard library's expat parser after a
first pass that refuses any document type declaration: a ``<!DOCTYPE`` is where entities are declared,
and entities are how an XML file expands to gigabytes ("billion laughs") or pulls in a file from this
machine (an external entity). No VOC writer emits one, so nothing real is lost. The first pass stops at
the declaration, before any entity is expanded, so a hostile file costs a few microseconds. Files over
``MAX_XML_BYTES`` are refused too: a real annotation is a few kilobytes.

Coordinates are returned as written (1-based pixels); converting them is ``ssd.data.voc``'s job.
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
import xml.parsers.expat
from dataclasses import dataclass
from typing import List, Optional, Tuple

#: Larger annotation files are refused unread (VOC2012's largest is about 6 KB).
MAX_XML_BYTES = 4 << 20


class XMLRefused(ValueError):
    """An annotation file that declares a document type or entities, or is far too large."""


class NotVOC(ValueError):
    """An XML file that is not a Pascal VOC annotation (its root is not ``<annotation>``)."""


@dataclass(frozen=True)
class VOCObject:
    """One ``<object>``: its class name and box as written (1-based pixels; None when unreadable)."""

    name: str
    box: Optional[Tuple[float, float, float, float]]   # xmin, ymin, xmax, ymax
    difficult: bool
    truncated: bool


@dataclass(frozen=True)
class VOCAnnotation:
    """What one XML says about its image: the file name, the size it was labelled at, the objects."""

    filename: str
    width: Optional[int]
    height: Optional[int]
    objects: List[VOCObject]


def read_annotation(path: str) -> VOCAnnotation:
    """Parse ``path``; ``XMLRefused`` for a hostile file, ``NotVOC`` for another kind of XML,
    ``ET.ParseError`` (or ``OSError``) for one that is not well-formed (or not readable)."""
    if os.path.getsize(path) > MAX_XML_BYTES:
        raise XMLRefused(f"larger than {MAX_XML_BYTES >> 20} MB")
    with open(path, "rb") as fh:
        data = fh.read(MAX_XML_BYTES + 1)
    refuse_declarations(data)
    root = ET.fromstring(data)
    if root.tag != "annotation":
        raise NotVOC(f"root element is <{root.tag[:40]}>, not <annotation>")
    size = root.find("size")
    return VOCAnnotation(filename=(root.findtext("filename") or "").strip(),
                         width=_positive_int(size, "width"), height=_positive_int(size, "height"),
                         objects=[_object(o) for o in root.findall("object")])


def refuse_declarations(data: bytes) -> None:
    """``XMLRefused`` if ``data`` declares a document type, entities or notations; else nothing.

    Why a separate pass: ElementTree's C parser gives no hook to stop at a declaration, while expat's
    handlers fire as soon as one starts, before the entities it defines are used anywhere."""
    parser = xml.parsers.expat.ParserCreate()

    def refuse(*_args: object) -> None:
        raise XMLRefused("declares a document type or entities (refused: a way to expand or read files)")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.NotationDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as err:
        raise ET.ParseError(str(err)) from None


def _object(obj: ET.Element) -> VOCObject:
    box = obj.find("bndbox")
    coords = tuple(_number(box, k) for k in ("xmin", "ymin", "xmax", "ymax")) if box is not None else ()
    ok = len(coords) == 4 and all(c is not None for c in coords)
    return VOCObject(name=(obj.findtext("name") or "").strip(),
                     box=coords if ok else None,  # type: ignore[arg-type]
                     difficult=_flag(obj, "difficult"), truncated=_flag(obj, "truncated"))


def _number(parent: Optional[ET.Element], tag: str) -> Optional[float]:
    """A finite number in ``<tag>`` (CVAT writes ``12.5``, LabelImg ``12``), else None."""
    text = parent.findtext(tag) if parent is not None else None
    try:
        value = float((text or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _positive_int(parent: Optional[ET.Element], tag: str) -> Optional[int]:
    """A size field; LabelImg writes 0 when it did not know the size, which means "unknown"."""
    value = _number(parent, tag)
    return int(round(value)) if value is not None and value > 0 else None


def _flag(obj: ET.Element, tag: str) -> bool:
    """``<difficult>1</difficult>``; missing or unreadable counts as 0, as GluonCV's VOC reader does."""
    value = _number(obj, tag)
    return bool(value) if value is not None else False

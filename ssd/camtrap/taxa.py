"""A taxa CSV: the scientific name of each class of a species model, which Camtrap DP's
``observations.scientificName`` and the package's ``taxonomic`` list need and a class name is not.

GBIF and Agouti use an observation only through its scientific name; a model's class ``deer`` says
nothing they can match. The CSV has a row per class: ``class`` (as in the results'
``detection_categories``), ``scientificName``, and optionally ``taxonID`` (a GBIF, ITIS or Catalogue
of Life URI), ``taxonRank``, the higher ranks ``kingdom``, ``phylum``, ``taxonClass``, ``order``, ``family``, ``genus``
(``taxonClass`` is the profile's ``class``: that header is already the model's class), and vernacular names: ``vernacularNames.eng``,
``vernacularNames.nld`` … (three-letter ISO 639-3 codes, as Camtrap DP asks), or ``vernacularName``
for English. Class names match case aside. A row with an empty scientificName leaves its class
without one on purpose.

Untrusted: every cell is refused with its line when it holds a control character, is too long, or
(names only) starts like a spreadsheet formula; no scientific or vernacular name begins with ``=``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ssd.base.cells import FORMULA_STARTS
from ssd.camtrap.csv_table import read_csv_table
from ssd.camtrap.megadetector import ResultsError

NEEDED = "class, scientificName"
RANKS = ("kingdom", "phylum", "class", "order", "family", "genus", "species", "subspecies")
TAXON_CLASS = "taxonClass"     # the header of the profile's ``class``: the CSV's ``class`` is the model's class
HIGHER = ("kingdom", "phylum", TAXON_CLASS, "order", "family", "genus")   # the profile's higher ranks, as headers
OPTIONAL = ("taxonID", "taxonRank", *HIGHER)
PROFILE_KEY = {TAXON_CLASS: "class"}                    # a header whose ``taxonomic`` key differs from it
MAX_CELL = 200
HUMAN = "homo sapiens"
_VERNACULAR = re.compile(r"vernacularnames?(?:[._: ]([a-z]+))?", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Taxon:
    """One entry of Camtrap DP's ``taxonomic`` list."""

    scientific_name: str
    extra: Tuple[Tuple[str, str], ...] = ()                 # taxonID, taxonRank, kingdom … genus, when given
    vernacular_names: Tuple[Tuple[str, str], ...] = ()      # (ISO 639-3 code, name)

    def entry(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"scientificName": self.scientific_name, **dict(self.extra)}
        if self.vernacular_names:
            out["vernacularNames"] = dict(self.vernacular_names)
        return out

    @property
    def observation_type(self) -> str:
        """``human`` for Homo sapiens, else ``animal``: a class given a taxon is an organism."""
        return "human" if self.scientific_name.casefold() == HUMAN else "animal"


Taxa = Dict[str, Optional[Taxon]]       # class name as written → taxon (None: left without one on purpose)


def class_key(name: Any) -> str:
    """How a class is matched: case and surrounding spaces aside."""
    return str(name).strip().casefold()


def _header_key(name: str) -> str:
    """How a header is matched: case, ``_``, ``-`` and spaces aside (``taxon_class`` is ``taxonClass``)."""
    return re.sub(r"[_\- ]", "", name).casefold()


def _columns(path: str, header: List[str]) -> Dict[str, str]:
    """Our field (``class``, ``scientificName``, ``taxonID`` …, ``vernacularNames.eng``) → the header's
    name for it; ``ResultsError`` showing the header when it lacks class or scientificName."""
    known = {_header_key(c): c for c in ("class", "scientificName", *OPTIONAL)}
    cols: Dict[str, str] = {}
    for name in header:
        m = _VERNACULAR.fullmatch(name)
        if m:
            lang = (m.group(1) or "eng").lower()
            if len(lang) != 3:
                raise ResultsError(f"taxa file '{path}': column '{name[:50]}': vernacular name languages are "
                                   "three letters (ISO 639-3: vernacularNames.eng, .nld, .fra, .deu)")
            cols[f"vernacularNames.{lang}"] = name
        elif _header_key(name) in known:
            cols[known[_header_key(name)]] = name
    if "class" not in cols or "scientificName" not in cols:
        shown = ",".join(header)[:200]
        raise ResultsError(f"taxa file '{path}': its header is '{shown}'; the first line must name the columns "
                           f"{NEEDED} (one row per class of the model; optional taxonID, taxonRank, "
                           f"{', '.join(HIGHER)}, vernacularNames.eng)")
    return cols


def _cell(path: str, line: int, row: Dict[str, str], column: Optional[str], name_like: bool = True) -> str:
    """A cell's text, stripped; ``ResultsError`` with its line for one that is unsafe or too long."""
    text = (row.get(column) or "").strip() if column else ""
    if _CONTROL.search(text):
        raise ResultsError(f"{path}, line {line}: column {column} holds a control character")
    if len(text) > MAX_CELL:
        raise ResultsError(f"{path}, line {line}: column {column} is too long ({len(text)} characters; "
                           f"at most {MAX_CELL})")
    if name_like and text.startswith(FORMULA_STARTS):
        raise ResultsError(f"{path}, line {line}: column {column} starts like a spreadsheet formula "
                           f"({text[:30]!r}): not a name")
    return text


def _taxon(path: str, line: int, row: Dict[str, str], cols: Dict[str, str]) -> Optional[Taxon]:
    """A row's taxon (None for an empty scientificName); a taxonRank outside Camtrap DP's list is refused."""
    name = _cell(path, line, row, cols["scientificName"])
    extra = [(f, _cell(path, line, row, cols.get(f))) for f in OPTIONAL]
    extra = [(PROFILE_KEY.get(f, f), v.lower() if f == "taxonRank" else v) for f, v in extra if v]
    rank = dict(extra).get("taxonRank")
    if rank and rank not in RANKS:
        raise ResultsError(f"{path}, line {line}: taxonRank '{rank}' is not one of {', '.join(RANKS)}")
    names = [(c.split(".", 1)[1], _cell(path, line, row, cols[c])) for c in sorted(cols) if c.startswith("vern")]
    if not name:
        return None
    return Taxon(name, tuple(extra), tuple((lang, v) for lang, v in names if v))


def read_taxa(path: str) -> Taxa:
    """A taxa CSV → class name → ``Taxon`` (None where its scientificName is left empty); a class
    given twice with different names is refused, naming both lines."""
    header, rows = read_csv_table(path, "taxa file")
    cols = _columns(path, header)
    out: Taxa = {}
    seen: Dict[str, Tuple[int, Optional[Taxon]]] = {}
    for line, row in rows:
        cls = _cell(path, line, row, cols["class"], name_like=False)
        if not cls:
            raise ResultsError(f"{path}, line {line}: the class column is empty (the model's class name)")
        taxon = _taxon(path, line, row, cols)
        first = seen.setdefault(class_key(cls), (line, taxon))
        if first[1] != taxon:
            raise ResultsError(f"{path}: class '{cls}' is given twice, on line {first[0]} and line {line}, "
                               "with different taxa")
        out[cls] = taxon
    return out


def by_class(taxa: Taxa) -> Dict[str, Optional[Taxon]]:
    """``taxa`` keyed by ``class_key``: how an observation's class finds its taxon."""
    return {class_key(cls): taxon for cls, taxon in taxa.items()}


def taxon_fields(class_name: str, index: Dict[str, Optional[Taxon]]) -> Dict[str, str]:
    """An observation's ``observationType`` and ``scientificName`` from its class's taxon; nothing
    for a class without one (its type then comes from its name, as without a taxa file)."""
    taxon = index.get(class_key(class_name))
    return {"observationType": taxon.observation_type, "scientificName": taxon.scientific_name} if taxon else {}


def taxonomic(observations: List[Dict[str, Any]], taxa: Taxa) -> List[Dict[str, Any]]:
    """The package's ``taxonomic`` list: each taxon the observations name, once, by scientific name."""
    used = {o.get("scientificName") for o in observations}
    entries = {t.scientific_name: t.entry() for t in taxa.values() if t is not None and t.scientific_name in used}
    return [entries[name] for name in sorted(entries)]


def taxa_report(names: Dict[str, str], observations: List[Dict[str, Any]], taxa: Taxa) -> Dict[str, Any]:
    """What a user must see after an export with a taxa file: the animal classes observed without a
    scientific name (GBIF will not use those observations), with their counts, and the taxa rows
    naming no class of the results (a typo there would silently leave a class unnamed)."""
    if not taxa:
        return {"unnamed_classes": [], "unmatched_taxa": [], "class_names": []}
    classes = {class_key(n) for n in names.values()}
    observed = [observed_name(o.get("observationTags")) for o in observations
                if o.get("observationType") == "animal" and not o.get("scientificName")]
    counts = {n: observed.count(n) for n in dict.fromkeys(names.values())}
    return {"unnamed_classes": [(n, c) for n, c in counts.items() if c],
            "unmatched_taxa": [cls for cls in taxa if class_key(cls) not in classes],
            "class_names": list(dict.fromkeys(names.values()))}


#: How an observation's tags name its class and, where a classifier named one, its species
#: (``camtrap_dp``: ``class:animal|species:red deer``, then ``|suspect:true`` for a suspect repeat).
CLASS_TAG, SPECIES_TAG, SUSPECT_TAG = "class:", "|species:", "|suspect:true"


def observed_name(tags: Any) -> str:
    """What an observation was observed as, from its tags: its species where a classifier named
    one, else its class ('' for a blank)."""
    text = str(tags or "")
    text = text[:-len(SUSPECT_TAG)] if text.endswith(SUSPECT_TAG) else text
    if SPECIES_TAG in text:
        return text.split(SPECIES_TAG, 1)[1]
    return text[len(CLASS_TAG):] if text.startswith(CLASS_TAG) else text


def taxa_warnings(done: Dict[str, Any], path: str) -> List[str]:
    """The lines the CLI and the page show from ``taxa_report``'s keys of a written package."""
    out = []
    if done.get("unnamed_classes"):
        named = ", ".join(f"{n!r} ({c} observation(s))" for n, c in done["unnamed_classes"][:10])
        out.append(f"{named}: no scientificName in {path}, so GBIF and Agouti will not use these observations "
                   "(add a row per class to name it)")
    if done.get("unmatched_taxa"):
        typos = ", ".join(map(repr, done["unmatched_taxa"][:10]))
        out.append(f"{len(done['unmatched_taxa'])} row(s) of {path} name no class of these results: {typos}; "
                   f"a typo? The classes are {', '.join(map(repr, done.get('class_names', [])[:20]))} (matched "
                   "case aside)")
    return out

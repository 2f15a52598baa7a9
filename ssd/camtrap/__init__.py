"""Camera-trap seasons: folder walks, the batch run and its journal, videos, MegaDetector and CSV
results, episodes, repeats and their review, merging, summaries and the threshold sweep, sorting,
browsing, and the Camtrap DP / XLSX exports.

Why a layer of its own: these modules only use the detector (``ssd.inference``) and ``ssd.base``;
keeping them apart leaves ``ssd.inference`` to the detector, precision, evaluation and export.
"""

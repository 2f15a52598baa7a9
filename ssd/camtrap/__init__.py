"""Camera-trap seasons: folder walks, the batch run and its journal, MegaDetector and CSV results,
repeats, merging, summaries, sorting and browsing.

Why a layer of its own: these modules only use the detector (``ssd.inference``) and ``ssd.base``;
keeping them apart leaves ``ssd.inference`` to the detector, precision, evaluation and export.
"""

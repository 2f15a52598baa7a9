"""SSD studio library: anchors, TinySSD, targets, losses, training, detection, evaluation, datasets.

Knows nothing of Streamlit; ``python -m ssd`` and the app both call into it.
"""
import os as _os

# MXNet sizes its OpenMP pool once, when the library loads, and by default leaves half the
# cores idle: on the 2-core development machine TinySSD's forward pass took 26.7 ms with the
# default and 15.0 ms with both cores. Use every core unless the environment says otherwise.
# (This must run before mxnet is imported, which every ssd module does lazily or after this.)
_os.environ.setdefault("OMP_NUM_THREADS", str(_os.cpu_count() or 1))
# Binding a graph on the CPU makes MXNet say "Subgraph backend MKLDNN is activated" on stderr, once per
# executor: five lines of noise in every export, and in logs a person reads. The choice stays MXNet's.
_os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")

__version__ = "0.1.0"

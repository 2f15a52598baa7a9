"""SSD studio library: anchors, TinySSD, targets, losses, training, detection, evaluation, datasets.

Knows nothing of Streamlit; ``python -m ssd`` and the app both call into it.
"""
__version__ = "0.1.0"

"""Figures: detections drawn on images and matplotlib figures, without pyplot state."""

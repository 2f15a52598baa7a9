"""Inference: the Detector, interactive batches, result formats, VOC07 evaluation and export."""

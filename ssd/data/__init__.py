"""Data: dataset formats, safe image decoding, downloads, caches, augmentation and batches."""

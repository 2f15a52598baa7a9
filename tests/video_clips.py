"""Small video clips made by the tests themselves (OpenCV's writer, headers rewritten where a
case needs it): no clip is downloaded or kept in the repository."""
import numpy as np


def write_video(path, frames=10, fps=5.0, size=(96, 64), fourcc="mp4v", seed=0):
    """A short clip: a bright box moving over a darkening background (OpenCV's own writer)."""
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened(), f"OpenCV cannot write {fourcc} here"
    rng = np.random.RandomState(seed)
    for i in range(frames):
        f = np.full((size[1], size[0], 3), 200 - 15 * i, np.uint8)
        x = 5 + 4 * i + int(rng.randint(0, 3))
        cv2.rectangle(f, (x, 10), (x + 30, 45), (30, 210, 250), -1)
        w.write(f)
    w.release()


def variable_rate_mp4(path):
    """20 frames, each as bright as its number × 12: ten 0.2 s apart, then ten 0.8 s apart (10 s; 2 fps
    on average), made by rewriting the time-to-sample table of an MP4 from OpenCV's writer."""
    import struct

    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (64, 48))
    for i in range(20):
        w.write(np.full((48, 64, 3), i * 12, np.uint8))
    w.release()
    b = bytearray(path.read_bytes())

    def at(name):
        return b.find(name) - 4

    s = at(b"stts")
    size, tick = struct.unpack(">I", b[s:s + 4])[0], struct.unpack(">I", b[s + 20:s + 24])[0]
    table = struct.pack(">I", 24 + 8) + b"stts" + bytes(4) + struct.pack(">IIIII", 2, 10, tick, 10, 4 * tick)
    for name in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
        o = at(name)
        b[o:o + 4] = struct.pack(">I", struct.unpack(">I", b[o:o + 4])[0] + len(table) - size)
    b[s:s + size] = table
    o = at(b"mdhd")
    scale = 50 * tick / struct.unpack(">I", b[o + 24:o + 28])[0]          # the new length over the old
    b[o + 24:o + 28] = struct.pack(">I", 50 * tick)
    for name, off in ((b"mvhd", 24), (b"tkhd", 28), (b"elst", 16)):
        o = at(name)
        b[o + off:o + off + 4] = struct.pack(">I", round(struct.unpack(">I", b[o + off:o + off + 4])[0] * scale))
    path.write_bytes(bytes(b))


def set_avi_frame_count(path, frames):
    """Rewrite the frame count an AVI's headers state (the main header's and the stream's), as a
    camera that wrote its header before the clip ended does."""
    import struct

    b = bytearray(path.read_bytes())
    for name, off in ((b"avih", 16), (b"strh", 32)):
        o = b.find(name) + 8 + off
        b[o:o + 4] = struct.pack("<I", frames)
    path.write_bytes(bytes(b))

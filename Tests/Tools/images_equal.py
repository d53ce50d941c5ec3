#!/usr/bin/env python3
"""images_equal.py A B: exit 0 when two images have the same size and RGB pixels; otherwise
print where they first differ and exit 1."""
import sys

from PIL import Image  # Pillow comes with vncdotool

a, b = (Image.open(path).convert("RGB") for path in sys.argv[1:3])
if a.size != b.size:
    sys.exit(f"sizes differ: {a.size} and {b.size}")
pa, pb = a.tobytes(), b.tobytes()
if pa != pb:
    index = next(i for i in range(len(pa)) if pa[i] != pb[i]) // 3
    sys.exit(f"pixels differ first at x={index % a.size[0]} y={index // a.size[0]}")

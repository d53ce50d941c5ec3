#!/usr/bin/env python3
"""Reads the test kernel's framebuffer console back as text, for tests of the display path.

The console draws 8x16 cells from guest/src/font8x16.c in two colours (see guest/README.md), so
each cell is matched exactly against the font, in normal and inverse video (the cursor and the
status line are inverse). Prints one line per text row, trailing spaces removed; a cell that is
no glyph prints as '?'.

    screen_text.py SCREEN.png          a screenshot (vncdotool's, or engram display --png)
    screen_text.py --display FILE      an Engram display file (header + XRGB8888 pixels)
"""
import argparse
import pathlib
import re
import struct
import sys

FONT = pathlib.Path(__file__).resolve().parents[2] / "guest" / "src" / "font8x16.c"
LIGHT = (0xC0, 0xC0, 0xC0)


def load_font():
    """Glyph bitmaps (16 row bytes) to characters, from the generated C file."""
    glyphs = {}
    for code, rows in re.findall(r"/\* 0x([0-9a-f]{2}) .*?\*/ \{([^}]*)\}", FONT.read_text()):
        bitmap = tuple(int(value, 16) for value in rows.split(","))
        glyphs.setdefault(bitmap, chr(int(code, 16)))
    return glyphs


def pixels_from_png(path):
    from PIL import Image  # Pillow comes with vncdotool

    image = Image.open(path).convert("RGB")
    width, height = image.size
    data = image.tobytes()
    return width, height, lambda x, y: tuple(data[(y * width + x) * 3:(y * width + x) * 3 + 3])


def pixels_from_display(path):
    raw = pathlib.Path(path).read_bytes()
    if raw[:8] != b"ENGRAMFB":
        sys.exit(f"{path} is not an Engram display file")
    width, height, stride = struct.unpack_from("<III", raw, 16)
    base = 4096

    def pixel(x, y):
        offset = base + y * stride + x * 4
        return raw[offset + 2], raw[offset + 1], raw[offset]

    return width, height, pixel


def screen_text(width, height, pixel):
    glyphs = load_font()
    lines = []
    for row in range(height // 16):
        text = []
        for column in range(width // 8):
            bits = []
            for y in range(16):
                byte = 0
                for x in range(8):
                    byte = byte << 1 | (pixel(column * 8 + x, row * 16 + y) == LIGHT)
                bits.append(byte)
            bitmap = tuple(bits)
            inverse = tuple(b ^ 0xFF for b in bitmap)
            text.append(glyphs.get(bitmap) or glyphs.get(inverse) or "?")
        lines.append("".join(text).rstrip())
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("png", nargs="?")
    parser.add_argument("--display")
    args = parser.parse_args()
    if bool(args.png) == bool(args.display):
        parser.error("give a PNG or --display FILE")
    source = pixels_from_display(args.display) if args.display else pixels_from_png(args.png)
    print("\n".join(screen_text(*source)))


if __name__ == "__main__":
    main()

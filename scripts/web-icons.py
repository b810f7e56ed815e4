#!/usr/bin/env python3
# Draws the web app's icons (www/icons/*.png, committed) with the standard library only: a
# white speech bubble with three dots on the app's accent colour. Two kinds, each at 192 and
# 512 pixels: "any" (a rounded square, transparent corners) and "maskable" (full-bleed
# background, the drawing inside the central safe-zone circle of radius 40%, so a launcher
# may cut any shape out of it). Run it again after changing the drawing:
#   python3 scripts/web-icons.py
import math
import os
import struct
import sys
import zlib

ACCENT = (0x24, 0x57, 0xC5)
WHITE = (0xFF, 0xFF, 0xFF)
SIZES = (192, 512)
SUPERSAMPLE = 3  # samples per pixel along each axis, for smooth edges


def in_ellipse(x, y, cx, cy, rx, ry):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def in_triangle(x, y, a, b, c):
    def side(p, q):
        return (q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0])

    s1, s2, s3 = side(a, b), side(b, c), side(c, a)
    return (s1 >= 0 and s2 >= 0 and s3 >= 0) or (s1 <= 0 and s2 <= 0 and s3 <= 0)


def in_rounded_square(x, y, radius):
    """The unit square with corners rounded by `radius`."""
    cx = min(max(x, radius), 1 - radius)
    cy = min(max(y, radius), 1 - radius)
    return 0 <= x <= 1 and 0 <= y <= 1 and math.hypot(x - cx, y - cy) <= radius


def drawing(u, v):
    """The colour of the bubble drawing at (u, v) in its own unit frame, or None (background)."""
    for dx in (-0.13, 0.0, 0.13):
        if in_ellipse(u, v, 0.5 + dx, 0.46, 0.045, 0.045):
            return ACCENT
    if in_ellipse(u, v, 0.5, 0.46, 0.36, 0.28):
        return WHITE
    if in_triangle(u, v, (0.26, 0.6), (0.18, 0.82), (0.44, 0.70)):
        return WHITE
    return None


def colour_at(x, y, maskable):
    """RGBA at (x, y) in the icon's unit square."""
    if maskable:
        scale, inside = 0.76, True  # the drawing fits the safe zone (radius 0.4 around the centre)
    else:
        scale, inside = 0.84, in_rounded_square(x, y, 0.22)
    if not inside:
        return (0, 0, 0, 0)
    u = (x - 0.5) / scale + 0.5
    v = (y - 0.5) / scale + 0.5
    return (*(drawing(u, v) or ACCENT), 255)


def render(size, maskable):
    rows = []
    n = SUPERSAMPLE
    for py in range(size):
        row = bytearray([0])  # filter type 0 (none)
        for px in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(n):
                for sx in range(n):
                    r, g, b, a = colour_at((px + (sx + 0.5) / n) / size, (py + (sy + 0.5) / n) / size, maskable)
                    acc[0] += r * a
                    acc[1] += g * a
                    acc[2] += b * a
                    acc[3] += a
            alpha = acc[3]
            if alpha:
                row += bytes((round(acc[0] / alpha), round(acc[1] / alpha), round(acc[2] / alpha), round(alpha / (n * n))))
            else:
                row += b"\0\0\0\0"
        rows.append(bytes(row))
    return png(size, size, b"".join(rows))


def png(width, height, raw):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "www", "icons")
    os.makedirs(out, exist_ok=True)
    for size in SIZES:
        for maskable in (False, True):
            name = f"{'maskable' if maskable else 'icon'}-{size}.png"
            with open(os.path.join(out, name), "wb") as f:
                f.write(render(size, maskable))
            print(f"wrote www/icons/{name}", file=sys.stderr)


if __name__ == "__main__":
    main()

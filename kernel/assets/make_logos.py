"""Draws tandem's kernel logos (two bars: one waiting in turn, one overlapping) as PNG
files with only the standard library. Run: python3 make_logos.py"""
import struct
import zlib

BG = (40, 44, 52, 255)
SYNC = (222, 165, 60, 255)   # orange: tasks one after another
ASYNC = (86, 160, 230, 255)  # blue: tasks that overlap


def draw(size):
    px = [[(0, 0, 0, 0)] * size for _ in range(size)]
    r = size // 6

    def inside_rounded(x, y):
        cx = min(max(x, r), size - 1 - r)
        cy = min(max(y, r), size - 1 - r)
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r

    for y in range(size):
        for x in range(size):
            if inside_rounded(x, y):
                px[y][x] = BG

    def bar(x0, x1, y0, y1, colour):
        for y in range(int(y0 * size), int(y1 * size)):
            for x in range(int(x0 * size), int(x1 * size)):
                px[y][x] = colour

    # sync row: two tasks in turn
    bar(0.14, 0.46, 0.22, 0.36, SYNC)
    bar(0.50, 0.86, 0.22, 0.36, SYNC)
    # async rows: the same tasks overlapping
    bar(0.14, 0.46, 0.50, 0.62, ASYNC)
    bar(0.14, 0.60, 0.68, 0.80, ASYNC)
    return px


def png(px):
    h, w = len(px), len(px[0])
    raw = b"".join(b"\x00" + b"".join(struct.pack("BBBB", *p) for p in row) for row in px)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


for size in (32, 64):
    with open(f"logo-{size}x{size}.png", "wb") as f:
        f.write(png(draw(size)))

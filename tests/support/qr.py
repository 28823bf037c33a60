"""Reading a QR code back: an SVG drawn as pixels, then decoded by ZXing (zxing-cpp), a reader Satchel does not use.

The SVG is rasterized here from its geometry: a filled background rectangle and one path of unit-high horizontal
strokes (``M``/``m`` moves, ``h`` runs, ``z``), scaled by the group's ``transform``: the shapes a QR code is drawn
with. Anything else in the picture (a ``<script>``, text, an image, a second path) fails the read, so a test that
decodes the picture also proves it holds nothing but the code. The browser tests decode Chromium's own rendering too.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import zxingcpp
from PIL import Image

SVG_NS = "{http://www.w3.org/2000/svg}"
_COMMAND = re.compile(r"([MmhHvVzZ])([^MmhHvVzZ]*)")
PIXELS_PER_UNIT = 4


def modules(svg: bytes) -> np.ndarray:
    """The picture as a grid of units, True where it is dark."""
    root = ET.fromstring(svg)
    kinds = {element.tag.removeprefix(SVG_NS) for element in root.iter()}
    assert kinds <= {"svg", "g", "path"}, f"a QR code's SVG holds only a group of paths, not {kinds}"
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    group = root.find(f"{SVG_NS}g")
    scale = float(re.fullmatch(r"scale\(([\d.]+)\)", group.attrib["transform"]).group(1)) if group is not None else 1
    size = round(width / scale), round(height / scale)
    grid = np.zeros((size[1], size[0]), dtype=bool)
    for path in root.iter(f"{SVG_NS}path"):
        if path.attrib.get("stroke") is not None:
            assert path.attrib["stroke"] in ("#000", "#000000"), "dark modules are black"
            _draw_strokes(grid, path.attrib["d"])
        else:
            assert path.attrib.get("fill") in ("#fff", "#ffffff"), "the only filled shape is the white background"
    return grid


def _draw_strokes(grid: np.ndarray, d: str) -> None:
    x = y = 0.0
    for command, args in _COMMAND.findall(d):
        numbers = [float(n) for n in re.findall(r"-?[\d.]+", args)]
        if command in "Mm":
            x, y = (numbers[0], numbers[1]) if command == "M" else (x + numbers[0], y + numbers[1])
        elif command == "h":
            row = int(y - 0.5)  # a unit-high stroke drawn along the row's middle
            start, end = sorted((x, x + numbers[0]))
            grid[row, int(start) : int(end)] = True
            x += numbers[0]
        elif command not in "zZ":
            raise AssertionError(f"unexpected path command {command!r} in a QR code")


def decode_svg(svg: bytes) -> list[str]:
    """Every text a QR reader finds in the picture."""
    light = ~modules(svg)
    pixels = np.kron(light, np.ones((PIXELS_PER_UNIT, PIXELS_PER_UNIT), dtype=bool)).astype(np.uint8) * 255
    return decode_image(Image.fromarray(pixels, mode="L"))


def decode_image(image: Image.Image) -> list[str]:
    """Every QR code's text ZXing finds in a picture (a screenshot, a rendering)."""
    return [found.text for found in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]

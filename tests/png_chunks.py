"""PNG files written chunk by chunk, for the kinds Pillow cannot write: a tRNS colour in 16
bits or in 1, 2 or 4 bits a pixel, or a header that claims more pixels than the file holds.
Shared by the test modules (pytest puts this folder on sys.path: there is no __init__.py)."""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One chunk: its length, kind, data and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_file(bits: int, colour_type: int, width: int, height: int, rows: bytes,
             transparent: bytes | None = None) -> bytes:
    """A PNG of ``bits`` a channel (colour type 0 grey, 2 RGB), filtered ``rows`` (which need
    not fill the ``width`` x ``height`` the header claims), and, unless ``transparent`` is
    None, a tRNS chunk holding it."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, colour_type, 0, 0, 0))
    trns = b"" if transparent is None else png_chunk(b"tRNS", transparent)
    return PNG_SIGNATURE + header + trns + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")

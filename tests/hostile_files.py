"""Files built to make an image parser work or allocate far beyond their size, as the security review
sent them (issue 27), plus one of each other container kind the portal accepts. Made in memory from
a real photo (tests/faces.py); shared by tests/security/test_parser_cost.py and bench/upload_cost.py."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from tests.faces import astronaut

MB = 1024 * 1024


def face_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(astronaut()).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def tiff_tags_on_one_blob(tags: int = 500, blob: int = MB) -> bytes:
    """A valid 64 x 64 grey TIFF whose directory also holds `tags` private tags, every one of them
    pointing at the same `blob` bytes: about `blob` on the wire, tags x blob once Pillow reads them."""
    width = height = 64
    entries = [
        (256, 3, 1, width),  # ImageWidth
        (257, 3, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 0),  # StripOffsets: filled in below
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 3, 1, height),  # RowsPerStrip
        (279, 4, 1, width * height),  # StripByteCounts
    ]
    directory_size = 2 + 12 * (len(entries) + tags) + 4
    pixels_at = 8 + directory_size
    blob_at = pixels_at + width * height
    entries[5] = (273, 4, 1, pixels_at)
    entries += [(40_000 + index, 7, blob, blob_at) for index in range(tags)]  # UNDEFINED x blob bytes
    directory = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        inline = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
        directory += struct.pack("<HHI", tag, kind, count) + inline
    directory += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + directory + bytes(range(256)) * 16 + b"\x5a" * blob


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_empty_chunks(chunks: int = 1_200_000) -> bytes:
    """A valid 64 x 64 grey PNG with `chunks` empty private chunks (12 bytes each) before its image."""
    side = 64
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    image = _png_chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + bytes([row] * side) for row in range(side))))
    return b"\x89PNG\r\n\x1a\n" + header + _png_chunk(b"prVt", b"") * chunks + image + _png_chunk(b"IEND", b"")


def jpeg_of_comment_markers(markers: int = 3_600_000) -> bytes:
    """A real JPEG photo with `markers` empty comment segments (4 bytes each) after its start marker."""
    photo = face_jpeg()
    return photo[:2] + b"\xff\xfe\x00\x02" * markers + photo[2:]


def jpeg_with_exif_tags_on_one_blob(tags: int = 4_000) -> bytes:
    """A real JPEG whose EXIF (a TIFF inside its APP1 segment) holds `tags` tags all pointing at the same
    12 kB: under 64 kB in the segment, about tags x 12 kB once Pillow reads the EXIF at open."""
    blob = 12 * 1024
    first = 8
    directory_size = 2 + 12 * tags + 4
    blob_at = first + directory_size
    directory = struct.pack("<H", tags)
    directory += b"".join(struct.pack("<HHII", 50_000 + index % 10_000, 7, blob, blob_at) for index in range(tags))
    tiff = b"II*\x00" + struct.pack("<I", first) + directory + struct.pack("<I", 0) + b"\x33" * blob
    payload = b"Exif\x00\x00" + tiff[: 65_533 - 6]
    photo = face_jpeg()
    return photo[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + photo[2:]


def gif_of_tiny_sub_blocks(sub_blocks: int = 5_000_000) -> bytes:
    """A 64 x 64 GIF whose comment extension is `sub_blocks` one-byte sub-blocks (2 bytes each)."""
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 128).save(buffer, format="GIF")
    photo = buffer.getvalue()
    flags = photo[10]
    after_header = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    comment = b"\x21\xfe" + b"\x01A" * sub_blocks + b"\x00"
    return photo[:after_header] + comment + photo[after_header:]


def webp_of_empty_chunks(chunks: int = 1_000_000) -> bytes:
    """A real WebP photo with `chunks` empty unknown chunks (8 bytes each) after its image."""
    buffer = io.BytesIO()
    Image.fromarray(astronaut()).save(buffer, format="WEBP", quality=80)
    photo = buffer.getvalue()
    body = photo[12:] + b"JUNK\x00\x00\x00\x00" * chunks
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def tiff_of_a_million_strips(strips: int = 1_000_000) -> bytes:
    """A 64-pixel-wide grey TIFF of `strips` one-byte-high strips that all share one row of pixels."""
    width = 64
    entries = [
        (256, 3, 1, width),
        (257, 4, 1, strips),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, strips, 0),  # StripOffsets: an array, filled in below
        (277, 3, 1, 1),
        (278, 3, 1, 1),  # RowsPerStrip
        (279, 4, strips, 0),  # StripByteCounts: an array
    ]
    directory_size = 2 + 12 * len(entries) + 4
    offsets_at = 8 + directory_size
    counts_at = offsets_at + 4 * strips
    row_at = counts_at + 4 * strips
    entries[5] = (273, 4, strips, offsets_at)
    entries[8] = (279, 4, strips, counts_at)
    directory = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        inline = struct.pack("<H", value) + b"\0\0" if kind == 3 and count == 1 else struct.pack("<I", value)
        directory += struct.pack("<HHI", tag, kind, count) + inline
    directory += struct.pack("<I", 0)
    arrays = struct.pack("<I", row_at) * strips + struct.pack("<I", width) * strips
    return b"II*\x00" + struct.pack("<I", 8) + directory + arrays + b"\x80" * width


def tiff_of_a_long_page_chain(pages: int = 50_000) -> bytes:
    """A TIFF of `pages` tiny directories chained one after the other, all describing the same 64 x 64 page."""
    width = 64
    pixels_at = 8
    first = pixels_at + width * width
    entry_count = 8
    size = 2 + 12 * entry_count + 4
    body = bytearray()
    for page in range(pages):
        at = first + page * size
        following = at + size if page + 1 < pages else 0
        directory = struct.pack("<H", entry_count)
        for tag, kind, value in (
            (256, 3, width),
            (257, 3, width),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, pixels_at),
            (278, 3, width),
            (279, 4, width * width),
        ):
            inline = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
            directory += struct.pack("<HHI", tag, kind, 1) + inline
        body += directory + struct.pack("<I", following)
    return b"II*\x00" + struct.pack("<I", first) + b"\x80" * (width * width) + bytes(body)


# The review's three files first, then one of each other kind: name -> builder.
HOSTILE = {
    "TIFF: 500 tags on one 1 MB blob": tiff_tags_on_one_blob,
    "PNG: 1.2 million empty chunks": png_of_empty_chunks,
    "JPEG: 3.6 million comment markers": jpeg_of_comment_markers,
    "JPEG: EXIF of 4,000 tags on one blob": jpeg_with_exif_tags_on_one_blob,
    "GIF: 5 million one-byte sub-blocks": gif_of_tiny_sub_blocks,
    "WebP: 1 million empty chunks": webp_of_empty_chunks,
    "TIFF: a million strips": tiff_of_a_million_strips,
    "TIFF: 50,000 chained pages": tiff_of_a_long_page_chain,
}

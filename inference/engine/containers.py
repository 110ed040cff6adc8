"""A bounded walk over an upload's container (JPEG segments, PNG chunks, TIFF directories and tags, WebP
chunks, GIF blocks) before Pillow parses any of it.

Pillow reads every segment, chunk and tag of a file in Python when it opens it, and reads each TIFF
tag's value into memory even when many tags point at the same bytes. A small hostile file can make
that cost seconds and hundreds of megabytes (the security review's files: a 1 MB TIFF of 500 tags on
one 1 MB blob, +473 MB; a 14.7 MB PNG of 1.2 million empty chunks, 9.75 s; a 14.5 MB JPEG of
3.6 million comment markers, 7.2 s and 231 MB). The walk here counts the structures a photograph
uses, stops at the first count past its limit, and so costs at most a few thousand small steps
whatever the file; the limits also bound what Pillow may then allocate while it reads the headers
(the memory ceiling below). A camera's or a phone's photo is far inside every limit.

The walk does not judge whether a file is well formed: where a structure runs past the end of the
file, it stops and leaves the verdict to Pillow (which says "damaged").
"""

from __future__ import annotations

import re
import struct

# JPEG: a phone photo holds about 10-25 segments (APPn metadata, quantisation and Huffman tables, frame
# and scan headers; an ICC profile in up to 16 APP2 segments), a progressive one about 20 more.
MAX_JPEG_SEGMENTS = 128
# PNG: the image data in chunks of 8-64 KB (libpng writes 8 KB: a 15 MB photo is under 2,000 chunks).
MAX_PNG_CHUNKS = 8192
# Metadata chunks (text, EXIF, ICC, time, physical size...): a handful in a real file.
MAX_PNG_METADATA_CHUNKS = 64
# Pillow inflates each compressed text or ICC chunk up to 1 MB (PngImagePlugin.MAX_TEXT_CHUNK).
MAX_PNG_COMPRESSED_CHUNKS = 8
# TIFF (and EXIF, which is a TIFF inside a JPEG, PNG or WebP): a camera writes 10-70 tags a directory.
MAX_TIFF_TAGS = 256
# The first picture's directory and those it points to (EXIF, GPS, interoperability, sub-images).
MAX_TIFF_DIRECTORIES = 8
# Pillow keeps every tag value it reads; an ICC profile or XMP packet is the largest, well under this.
MAX_TIFF_TAG_BYTES = 4 * 1024 * 1024
# One entry per strip or tile in Pillow's read plan: a 40-megapixel TIFF of one-row strips holds 7,000.
MAX_TIFF_STRIPS = 16_384
# WebP: VP8X, ICCP, ALPH, VP8/VP8L, EXIF, XMP; animation frames beyond this are refused anyway.
MAX_WEBP_CHUNKS = 64
# GIF: extension and image blocks; image data in sub-blocks of 255 bytes as every encoder writes them.
MAX_GIF_BLOCKS = 64
GIF_MIN_MEAN_SUB_BLOCK = 128

# The memory ceiling of the header check follows from these: besides the file, Pillow holds at most
# MAX_JPEG_SEGMENTS segments of 64 kB (8 MB), or MAX_PNG_COMPRESSED_CHUNKS inflated chunks of 1 MB,
# or MAX_TIFF_TAG_BYTES of tag values (tests/security/test_parser_cost.py: a file at each limit, < 20 MB).

TOO_COMPLEX = (
    "This file is built from more than {limit} {parts}, far more than a camera writes, and would cost "
    "too much to read. Send the photo as the camera saved it, or as a JPEG."
)
MULTI_PAGE = "Animated images are not accepted. Send a single still photo."


class StructureRefused(ValueError):
    """The file's structure costs too much to parse; the message is for the person who sent it."""


def check_structure(raw: bytes) -> None:
    """Raise StructureRefused if the container holds more segments, chunks, tags or blocks than its
    limits allow. Formats not named here (BMP) have no repeated structure to bound."""
    if raw.startswith(b"\xff\xd8"):
        _check_jpeg(raw)
    elif raw.startswith(b"\x89PNG\r\n\x1a\n"):
        _check_png(raw)
    elif raw[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        _check_tiff(raw)
    elif raw.startswith(b"RIFF") and raw[8:12] == b"WEBP":
        _check_webp(raw)
    elif raw[:6] in (b"GIF87a", b"GIF89a"):
        _check_gif(raw)


def _too_many(parts: str, limit: int) -> StructureRefused:
    return StructureRefused(TOO_COMPLEX.format(parts=parts, limit=f"{limit:,}"))


# --- JPEG ------------------------------------------------------------------------------------------------

# The next marker after a scan's entropy-coded data: 0xFF followed by anything but a stuffed 0x00 or a
# restart marker (0xD0-0xD7). Found by the regular-expression engine, not byte by byte in Python.
_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _check_jpeg(raw: bytes) -> None:
    """The first picture's segments up to its end-of-image marker (an MPO's other pictures are not
    parsed: only the first is analysed); EXIF segments walked as TIFF."""
    pos, segments, end = 2, 0, len(raw)
    while pos + 2 <= end:
        if raw[pos] != 0xFF:
            return  # not a marker where one must be: Pillow calls the file damaged
        marker = raw[pos + 1]
        if marker == 0xFF:
            pos += 1  # fill byte
            continue
        pos += 2
        if marker == 0xD9:
            return
        if marker in _STANDALONE:
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise _too_many("JPEG segments", MAX_JPEG_SEGMENTS)
        if pos + 2 > end:
            return
        length = int.from_bytes(raw[pos : pos + 2], "big")
        if length < 2:
            return
        if marker == 0xE1 and raw[pos + 2 : pos + 8] == b"Exif\x00\x00":
            _check_tiff(raw[pos + 8 : pos + length], exif=True)
        pos += length
        if marker == 0xDA:
            found = _AFTER_SCAN.search(raw, pos)
            if found is None:
                return
            pos = found.start()


# --- PNG -------------------------------------------------------------------------------------------------

_IMAGE_CHUNKS = frozenset({b"IDAT", b"fdAT"})
_COMPRESSED_CHUNKS = frozenset({b"zTXt", b"iTXt", b"iCCP"})


def _check_png(raw: bytes) -> None:
    pos, end = 8, len(raw)
    chunks = metadata = compressed = 0
    while pos + 8 <= end:
        length, kind = struct.unpack_from(">I4s", raw, pos)
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise _too_many("PNG chunks", MAX_PNG_CHUNKS)
        if kind not in _IMAGE_CHUNKS:
            metadata += 1
            if metadata > MAX_PNG_METADATA_CHUNKS:
                raise _too_many("PNG metadata chunks", MAX_PNG_METADATA_CHUNKS)
        if kind in _COMPRESSED_CHUNKS:
            compressed += 1
            if compressed > MAX_PNG_COMPRESSED_CHUNKS:
                raise _too_many("compressed PNG text or profile chunks", MAX_PNG_COMPRESSED_CHUNKS)
        if kind == b"eXIf":
            _check_tiff(memoryview(raw)[pos + 8 : pos + 8 + length], exif=True)
        if kind == b"IEND":
            return
        pos += 12 + length


# --- TIFF and EXIF -------------------------------------------------------------------------------------

# Bytes per value of each TIFF field type (unknown types are skipped by Pillow: no value read).
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
# Tags whose value is the offset of another directory.
_SUB_DIRECTORIES = frozenset({0x8769, 0x8825, 0xA005, 0x014A})
_STRIP_OFFSETS = frozenset({0x0111, 0x0144})  # StripOffsets, TileOffsets


def _check_tiff(raw: bytes | memoryview, *, exif: bool = False) -> None:
    """Every directory reachable from the first (the first picture and its EXIF, GPS, interoperability
    and sub-image directories), counting tags and the bytes of their values. In a TIFF file a second
    picture in the main chain makes it multi-page: refused here as Pillow's page count would refuse
    it, without walking a chain that may be as long as the file allows. In EXIF the second directory
    is the thumbnail's, walked like the others."""
    if len(raw) < 8:
        return
    order = "<" if raw[:2] == b"II" else ">"
    byteorder = "little" if order == "<" else "big"
    big = raw[2:4] in (b"+\x00", b"\x00+")
    if big:
        if len(raw) < 16:
            return
        first = struct.unpack_from(order + "Q", raw, 8)[0]
        count_format, entry_format, next_format, inline, entry_size = "Q", "HHQQ", "Q", 8, 20
    else:
        first = struct.unpack_from(order + "I", raw, 4)[0]
        count_format, entry_format, next_format, inline, entry_size = "H", "HHII", "I", 4, 12
    count_size = struct.calcsize(count_format)
    pending, seen, value_bytes, strips = [(first, True)], set(), 0, 0
    while pending:
        offset, main_chain = pending.pop()
        if offset in seen or not 0 < offset <= len(raw) - count_size:
            continue
        seen.add(offset)
        if len(seen) > MAX_TIFF_DIRECTORIES:
            raise _too_many("TIFF directories", MAX_TIFF_DIRECTORIES)
        tags = struct.unpack_from(order + count_format, raw, offset)[0]
        if tags > MAX_TIFF_TAGS:
            raise _too_many("tags in one TIFF directory", MAX_TIFF_TAGS)
        entries = offset + count_size
        for index in range(tags):
            at = entries + index * entry_size
            if at + entry_size > len(raw):
                return
            tag, kind, count, value = struct.unpack_from(order + entry_format, raw, at)
            size = _TYPE_SIZES.get(kind, 0) * count
            if size > inline:
                # Pillow reads the value wherever it lies, as often as tags point at it: counted each time.
                value_bytes += max(0, min(size, len(raw) - value))
            if tag in _STRIP_OFFSETS:
                strips += count
                if strips > MAX_TIFF_STRIPS:
                    raise _too_many("TIFF strips or tiles", MAX_TIFF_STRIPS)
            if tag in _SUB_DIRECTORIES and kind in (4, 13, 16, 18):
                if size <= inline:
                    pending.append((value, False))
                elif count <= MAX_TIFF_DIRECTORIES:
                    # Several sub-images: the offsets are stored elsewhere.
                    width = _TYPE_SIZES[kind]
                    for start in range(value, min(value + size, len(raw) - width + 1), width):
                        pending.append((int.from_bytes(raw[start : start + width], byteorder), False))
        if value_bytes > min(len(raw), MAX_TIFF_TAG_BYTES):
            # A well-formed file stores each value once: more than the file itself means tags share bytes.
            raise StructureRefused(
                "This file's tags point at the same data again and again, which would cost too much "
                "memory to read. Send the photo as the camera saved it, or as a JPEG."
            )
        after = entries + tags * entry_size
        if main_chain and after + struct.calcsize(next_format) <= len(raw):
            following = struct.unpack_from(order + next_format, raw, after)[0]
            if following and not exif:
                raise StructureRefused(MULTI_PAGE)
            pending.append((following, False))


# --- WebP ------------------------------------------------------------------------------------------------


def _check_webp(raw: bytes) -> None:
    pos, chunks, end = 12, 0, len(raw)
    while pos + 8 <= end:
        kind, length = struct.unpack_from("<4sI", raw, pos)
        chunks += 1
        if chunks > MAX_WEBP_CHUNKS:
            raise _too_many("WebP chunks", MAX_WEBP_CHUNKS)
        if kind == b"EXIF":
            exif = memoryview(raw)[pos + 8 : pos + 8 + length]  # a view: no copy of a large chunk
            _check_tiff(exif[6:] if exif[:6] == b"Exif\x00\x00" else exif, exif=True)
        pos += 8 + length + (length & 1)


# --- GIF -------------------------------------------------------------------------------------------------


def _check_gif(raw: bytes) -> None:
    end = len(raw)
    if end < 13:
        return
    pos = 13
    if raw[10] & 0x80:
        pos += 3 << ((raw[10] & 7) + 1)  # the global colour table
    blocks, sub_blocks = 0, 0
    max_sub_blocks = end // GIF_MIN_MEAN_SUB_BLOCK + 4 * MAX_GIF_BLOCKS
    while pos < end:
        introducer = raw[pos]
        if introducer == 0x3B:  # trailer
            return
        blocks += 1
        if blocks > MAX_GIF_BLOCKS:
            raise _too_many("GIF blocks", MAX_GIF_BLOCKS)
        if introducer == 0x21:
            pos += 2  # introducer and label
        elif introducer == 0x2C:
            if pos + 10 > end:
                return
            flags = raw[pos + 9]
            pos += 10
            if flags & 0x80:
                pos += 3 << ((flags & 7) + 1)  # a local colour table
            pos += 1  # LZW minimum code size
        else:
            return  # not a block: Pillow calls the file damaged or stops here
        while pos < end:
            length = raw[pos]
            pos += 1 + length
            if not length:
                break
            sub_blocks += 1
            if sub_blocks > max_sub_blocks:
                raise _too_many("GIF data blocks", max_sub_blocks)

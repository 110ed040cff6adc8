"""Decoding untrusted uploads safely: real images only, bounded in bytes and pixels, no metadata kept."""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inference.engine.containers import StructureRefused, check_structure

# Formats a phone or a scanner produces for a photograph. Anything else (SVG, PDF, animated GIF...)
# is refused before decoding. HEIC needs a plugin we do not ship; the message says to send JPEG.
ACCEPTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF"}
# Multi-picture JPEG (many phone and HDR photos): the first picture is the photo itself.
FIRST_FRAME_FORMATS = {"MPO"}
MIN_SIDE = 64
# The analysis works on a copy no larger than this: landmarks, millimetre measurements and a 224-pixel
# face crop need no more, and a 12-megapixel phone photo would otherwise cost several times the
# classifier in copying and resizing alone. The stored photo keeps its full size.
ANALYSIS_MAX_SIDE = 1024
# A progressive JPEG is decoded one pass over the whole picture per scan: a camera writes about ten,
# and a hostile file of 341 KB with 20,000 empty scans cost 48 s of CPU. Counted before decoding.
MAX_JPEG_SCANS = 64
# The decoding work of a typical phone photo (12 megapixels in ten progressive scans): an upload's cost
# for the per-user limit is its work in these units, at least 1.
STANDARD_DECODE_WORK = 12_000_000 * 10


class ImageRejected(ValueError):
    """The upload is not an image we can analyse; the message is for the person who sent it."""


@dataclass(frozen=True)
class CleanImage:
    """A decoded photo, oriented upright, re-encoded without any metadata."""

    data: bytes  # JPEG bytes (no EXIF, no GPS, no ICC)
    width: int
    height: int
    sha256: str
    source_format: str


@dataclass(frozen=True)
class UploadHeader:
    """What an upload's headers say, read without decoding a pixel."""

    format: str
    width: int
    height: int
    scans: int  # entropy-coded scans of a JPEG (an upper bound); 1 for other formats

    @property
    def cost(self) -> int:
        """The decoding work, in typical phone photos (STANDARD_DECODE_WORK), at least 1."""
        return max(1, math.ceil(self.width * self.height * self.scans / STANDARD_DECODE_WORK))


def inspect_upload(raw: bytes, *, max_bytes: int, max_pixels: int) -> UploadHeader:
    """The web process's checks: cheap, from the headers only (milliseconds whatever the file). The
    pixels are decoded later, by the worker (decode_upload), under the task's time limit."""
    _check_size(raw, max_bytes)
    scans = 1
    if raw.startswith(b"\xff\xd8"):  # a JPEG (or an MPO): Pillow refuses anything else that starts so
        # 0xFFDA starts a scan; inside entropy-coded data every 0xFF is followed by 0x00, so counting
        # the marker bytes counts the scans (plus those of an embedded thumbnail: an upper bound).
        scans = raw.count(b"\xff\xda")
        if scans > MAX_JPEG_SCANS:
            raise ImageRejected(
                f"This JPEG is stored in {scans} progressive passes (a camera writes about ten), which costs "
                "too much to decode. Send the photo as the camera saved it, or as a PNG."
            )
        if raw.rfind(b"\xff\xd9") < raw.rfind(b"\xff\xda"):
            raise ImageRejected(DAMAGED)  # no end-of-image marker after the last scan: cut short
    with _reasons_for_pillow_errors():
        probe = _probe(raw, max_pixels=max_pixels)
    return UploadHeader(format=probe.format, width=probe.size[0], height=probe.size[1], scans=max(scans, 1))


NOT_READABLE = "This file is not a photo we can read. Send a JPEG or PNG photo."
DAMAGED = "The photo is damaged or incomplete. Take or send it again."


def _check_size(raw: bytes, max_bytes: int) -> None:
    if not raw:
        raise ImageRejected("The file is empty. Choose a photo of the patient's face.")
    if len(raw) > max_bytes:
        # Not the file's size: the caller reads at most max_bytes + 1 bytes (scans.services.read_upload).
        raise ImageRejected(f"The file is too large: the limit is {max_bytes / 2**20:.3g} MB. Send a smaller photo.")


@contextmanager
def _reasons_for_pillow_errors():
    """Pillow's errors as ImageRejected with a reason a person can act on. Pillow's own bomb warning
    (at half its limit) is silenced: _probe checks against the portal's limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except ImageRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise ImageRejected(NOT_READABLE) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        # Truncated or corrupt data (Pillow raises several types for these).
        raise ImageRejected(DAMAGED) from None


def _probe(raw: bytes, *, max_pixels: int) -> Image.Image:
    """Walk the container (bounded: inference.engine.containers), then open it (headers only) and check
    format, frames and size; raises ImageRejected or Pillow's errors."""
    try:
        check_structure(raw)
    except StructureRefused as exc:
        raise ImageRejected(str(exc)) from None
    probe = Image.open(io.BytesIO(raw))
    fmt = probe.format
    if fmt not in ACCEPTED_FORMATS:
        raise ImageRejected(f"{fmt or 'This'} files are not accepted. Send a JPEG or PNG photo of the face.")
    if fmt not in FIRST_FRAME_FORMATS and getattr(probe, "n_frames", 1) > 1:
        raise ImageRejected("Animated images are not accepted. Send a single still photo.")
    width, height = probe.size
    if width * height > max_pixels:
        raise ImageRejected(
            f"The photo is {width}x{height} pixels, more than the {max_pixels / 1e6:.0f} megapixel "
            "limit. Send a smaller photo."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageRejected(f"The photo is only {width}x{height} pixels. Send a sharper photo of the face.")
    return probe


def decode_upload(raw: bytes, *, max_bytes: int, max_pixels: int) -> CleanImage:
    """The full decode (in the worker): upright, RGB, re-encoded as a JPEG with no metadata."""
    _check_size(raw, max_bytes)
    image = open_image(raw, max_pixels=max_pixels)
    fmt = image.format or "unknown"
    # Pillow's JPEG writer copies a comment from the decoded file (a JPEG COM segment, a PNG "comment"
    # text chunk) into the new one unless told otherwise: keep the pixels and nothing else.
    image.info = {}
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    data = buffer.getvalue()
    return CleanImage(
        data=data,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(data).hexdigest(),
        source_format=fmt,
    )


def open_image(raw: bytes, *, max_pixels: int, max_side: int | None = None) -> Image.Image:
    """Decode to an upright RGB image, or raise ImageRejected with a reason a person can act on.
    With ``max_side``, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, several times
    faster), never below ``max_side`` on both sides: for analysis, not for storage."""
    with _reasons_for_pillow_errors():
        probe = _probe(raw, max_pixels=max_pixels)
        fmt = probe.format
        if max_side and fmt in {"JPEG", "MPO"}:
            probe.draft(None, (max_side, max_side))
        probe.load()
        # Upright in place: exif_transpose otherwise returns a copy even of a photo that needs no
        # turning, 21 ms of a worker's 105 ms decode of a 12-megapixel phone photo.
        ImageOps.exif_transpose(probe, in_place=True)
    image = _to_rgb(probe)
    image.format = fmt
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        # 16-bit greyscale: scale to 8 bits rather than clipping everything to white.
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in {"RGBA", "LA", "P", "PA"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def analysis_copy(image: Image.Image, max_side: int = ANALYSIS_MAX_SIDE) -> Image.Image:
    """RGB, longest side at most ``max_side`` (area averaging: no aliasing, and a few times faster
    than Pillow's filtered resize)."""
    import cv2

    image = _to_rgb(image)
    longest = max(image.size)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return Image.fromarray(cv2.resize(np.asarray(image), size, interpolation=cv2.INTER_AREA))

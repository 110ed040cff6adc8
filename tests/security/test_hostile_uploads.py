"""Hostile uploads: a corpus of bad files sent to POST /api/v1/scans/ by carol, a caregiver of the patient.

Every file is made here, in memory, with Pillow, OpenCV, zlib and zipfile from scikit-image's astronaut
portrait (tests/faces.py); nothing is read from disk. The multipart body is written by hand, so file
names, content types and form fields reach the server exactly as an attacker would send them (Django's
test client would quietly strip a path from a file name).

Each case ends one of two ways, never in a 500:
- Refused: a 4xx whose JSON names the field and says what to do; no Scan row and no new file under the
  private media folder.
- Accepted: 202, and the stored photo is a fresh JPEG without any metadata (no EXIF, GPS, XMP, ICC
  profile or comment), inside the media folder under a random name. The analysis then runs inline and
  ends `done` (a face) or `rejected` (a real image with no usable face), never `failed`.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from scans.models import Scan
from tests.faces import astronaut

pytestmark = pytest.mark.django_db

URL = "/api/v1/scans/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The personas' passwords are hashed at creation; PBKDF2 costs ~4 s a test and no test logs in with one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- What a case expects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    field: str  # the form field the JSON message is about
    says: str  # words the message must contain
    status: int = 400


@dataclass(frozen=True)
class Accepted:
    analysis: str  # "done" (a face was measured) or "rejected" (a real image with no usable face)
    size: tuple[int, int] = (512, 512)  # width, height of the stored photo


# Metadata planted in the files below; none of it may reach the stored photo.
SECRETS = (
    b"Exif",
    b"GPS",
    b"SpyCam",
    b"Canon",
    b"Maria Santos",
    b"MRN-",
    b"ICC_PROFILE",
    b"xmpmeta",
    b"ns.adobe.com",
    b"<script",
    b"PK\x03\x04",
    b"SECRET",
)


def _patient(people) -> dict:
    return {"patient": str(people.patient.id)}


@dataclass(frozen=True)
class Case:
    id: str
    expect: Refused | Accepted
    body: Callable[[], bytes] | None  # the file's bytes; None sends no file part at all
    filename: str = "face.jpg"
    content_type: str = "image/jpeg"
    form: Callable[[SimpleNamespace], dict] = _patient  # the other (text) fields
    settings: dict = field(default_factory=dict)
    xfail: str = ""  # a known gap: why this case does not yet end as expected


# --- Making the files -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def face() -> Image.Image:
    return Image.fromarray(astronaut())  # 512 x 512 RGB, a real face


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def face_jpeg(**options) -> bytes:
    return encode(face(), "JPEG", quality=90, **options)


def face_png(**options) -> bytes:
    return encode(face(), "PNG", **options)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_from_chunks(
    width: int, height: int, idat: bytes, *, bit_depth: int = 8, colour_type: int = 0, extra: bytes = b""
) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + extra + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def png_bomb() -> bytes:
    """100 megapixels of black, 1 bit per pixel: about 12 kB on the wire, 300 MB once decoded to RGB."""
    side = 10_000
    row = b"\x00" * (1 + side // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return png_from_chunks(side, side, idat, bit_depth=1)


def png_huge_header_tiny_data() -> bytes:
    return png_from_chunks(7_000, 7_000, zlib.compress(b"\x00" * 64))


def png_zero_width() -> bytes:
    return png_from_chunks(0, 512, zlib.compress(b"\x00" * 64))


def png_with_broken_crc() -> bytes:
    data = bytearray(face_png())
    data[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    return bytes(data)


def png_text_bomb() -> bytes:
    """A zTXt chunk that inflates to 20 MB of text: a decompression bomb hidden in metadata."""
    info = PngImagePlugin.PngInfo()
    info.add(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 20_000_000, 9))
    return face_png(pnginfo=info)


def png_with_hostile_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(document.cookie)</script>")
    info.add_text("comment", "Maria Santos, MRN-00042, SECRET")  # lower case: Pillow's key for JPEG comments
    info.add_text("Author", "Canon SpyCam", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return face_png(pnginfo=info, exif=exif_with_gps().tobytes())


def bmp_bomb_header() -> bytes:
    """A BMP header for 8,000 x 8,000 pixels (64 MP) followed by no pixel data at all."""
    width = height = 8_000
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def jpeg_with_size(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header claims another size."""
    data = bytearray(encode(Image.new("RGB", (64, 64), "grey"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_with_corrupt_frame_header() -> bytes:
    data = bytearray(face_jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 4 : sof + 12] = b"\x00" * 8  # precision, size and components all zero
    return bytes(data)


def truncated_jpeg() -> bytes:
    data = face_jpeg()
    return data[: len(data) // 2]


def jpeg_zip_polyglot() -> bytes:
    """A real JPEG followed by a ZIP archive: a valid file of both kinds."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("payload/SECRET.txt", "PK inside a photo")
    return face_jpeg() + archive.getvalue()


def zip_holding_a_jpeg() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as bundle:
        bundle.writestr("face.jpg", face_jpeg())
    return archive.getvalue()


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" photoshop:City="Lisbon" '
    b'photoshop:Credit="Maria Santos SECRET"/></rdf:RDF></x:xmpmeta>'
)


def exif_with_gps(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "Canon EOS SpyCam"  # Model
    exif[0x013B] = "Maria Santos"  # Artist
    exif[0x0131] = "SECRET firmware 1.0"  # Software
    if orientation:
        exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (38.0, 43.0, 21.5), 3: "W", 4: (9.0, 8.0, 22.8), 29: "2024:05:01"})
    details = exif.get_ifd(0x8769)
    details.update({0x9003: "2024:05:01 08:15:00", 0x927C: b"SECRET maker note"})
    return exif


def jpeg_with_exif_and_gps() -> bytes:
    # Stored sideways with Orientation 6 (rotate 90 degrees clockwise to view), as phones do.
    sideways = face().crop((0, 0, 512, 448)).transpose(Image.Transpose.ROTATE_90)
    return encode(sideways, "JPEG", quality=90, exif=exif_with_gps(orientation=6).tobytes())


def jpeg_with_xmp_and_comment() -> bytes:
    return face_jpeg(xmp=XMP, comment=b"Patient Maria Santos, MRN-00042, SECRET")


def jpeg_with_huge_icc_profile() -> bytes:
    profile = b"ICC-junk SECRET " * 65_536  # 1 MB, spread over 17 APP2 segments
    return face_jpeg(icc_profile=profile)


def cmyk_jpeg() -> bytes:
    return encode(face().convert("CMYK"), "JPEG", quality=90)


def progressive_jpeg() -> bytes:
    return face_jpeg(progressive=True, optimize=True)


def png_16_bit_grey() -> bytes:
    grey = np.asarray(face().convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey), "PNG")


def png_16_bit_colour() -> bytes:
    bgr = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    ok, data = cv2.imencode(".png", bgr)
    assert ok
    return data.tobytes()


def palette_png_with_transparency() -> bytes:
    palette = face().convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    return encode(palette, "PNG", transparency=0)


def still_gif_with_comment() -> bytes:
    return encode(face().convert("P", palette=Image.Palette.ADAPTIVE), "GIF", comment=b"Maria Santos SECRET")


def frames(count: int) -> list[Image.Image]:
    return [face().rotate(angle) for angle in range(0, 10 * count, 10)]


def animated(fmt: str, **options) -> bytes:
    first, *rest = frames(3)
    return encode(first, fmt, save_all=True, append_images=rest, **options)


def tiff_with_many_pages() -> bytes:
    first, *rest = [face().reduce(4)] * 40  # 128 x 128 pages: the page count is refused, not the size
    return encode(first, "TIFF", save_all=True, append_images=rest, compression="tiff_deflate")


def face_tiff_with_tags() -> bytes:
    return encode(face(), "TIFF", description="Maria Santos SECRET", exif=exif_with_gps().tobytes())


def face_webp_with_metadata() -> bytes:
    return encode(face(), "WEBP", quality=90, exif=exif_with_gps().tobytes(), xmp=XMP)


def multi_picture_jpeg() -> bytes:
    """An MPO: a JPEG with a second image attached, as some cameras and HDR phones write."""
    return encode(face(), "MPO", save_all=True, append_images=[face().reduce(4)], quality=90)


def noise(width: int, height: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8))


def eps_file() -> bytes:
    # Pillow identifies EPS from its header and would run Ghostscript to decode it.
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 640 480\n%%EndComments\n"
        b"(SECRET) run\nnewpath 0 0 moveto 640 480 lineto stroke\nshowpage\n%%EOF\n"
    )


def heic_like_header() -> bytes:
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 512


# --- The corpus -----------------------------------------------------------------------------------------

NOT_READABLE = Refused("image", "not a photo we can read")
NOT_ACCEPTED = Refused("image", "files are not accepted")
ANIMATED = Refused("image", "Animated images are not accepted")
DAMAGED = Refused("image", "damaged or incomplete")
TOO_MANY_PIXELS = Refused("image", "megapixel limit")
TOO_SMALL = Refused("image", "Send a sharper photo")
FACE = Accepted("done")

CORPUS: list[Case] = [
    # Not images at all
    Case("empty-file", Refused("image", "empty"), lambda: b""),
    Case("text-renamed-jpg", NOT_READABLE, lambda: b"Patient notes: left side droops.\n" * 20),
    Case(
        "html-with-script",
        NOT_READABLE,
        lambda: b"<!doctype html><html><body><script>fetch('/api/v1/patients/')</script></body></html>",
        filename="face.html",
        content_type="text/html",
    ),
    Case(
        "svg-with-script",
        NOT_READABLE,
        lambda: (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512" onload="alert(1)">'
            b"<script>alert(document.domain)</script><circle r='200'/></svg>"
        ),
        filename="face.svg",
        content_type="image/svg+xml",
    ),
    Case(
        "pdf",
        NOT_READABLE,
        lambda: b"%PDF-1.7\n1 0 obj<</Type/Catalog/OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj\n%%EOF",
        filename="face.pdf",
        content_type="application/pdf",
    ),
    Case("windows-executable-renamed-jpg", NOT_READABLE, lambda: b"MZ\x90\x00\x03" + b"\x00" * 59 + b"PE\x00\x00"),
    Case(
        "zip-archive-holding-a-jpeg",
        NOT_READABLE,
        zip_holding_a_jpeg,
        filename="face.zip",
        content_type="application/zip",
    ),
    Case("heic-like-header", NOT_READABLE, heic_like_header, filename="IMG_0001.HEIC", content_type="image/heic"),
    Case("gif-header-without-frames", NOT_READABLE, lambda: b"GIF89a\x00\x02\x00\x02\x00\x00\x00;"),
    # Real images in formats a phone does not send for a photo
    Case(
        "eps-never-reaches-ghostscript",
        NOT_ACCEPTED,
        eps_file,
        filename="face.eps",
        content_type="application/postscript",
    ),
    Case("pcx-image", NOT_ACCEPTED, lambda: encode(face(), "PCX"), filename="face.pcx"),
    # Broken images
    Case("truncated-jpeg", DAMAGED, truncated_jpeg),
    Case("jpeg-with-zeroed-frame-header", NOT_READABLE, jpeg_with_corrupt_frame_header),
    Case(
        "png-with-broken-header-crc", NOT_READABLE, png_with_broken_crc, filename="face.png", content_type="image/png"
    ),
    Case("png-with-zero-width", NOT_READABLE, png_zero_width, filename="face.png", content_type="image/png"),
    Case("png-metadata-text-bomb", DAMAGED, png_text_bomb, filename="face.png", content_type="image/png"),
    # Sizes and limits
    Case("one-pixel-image", TOO_SMALL, lambda: encode(Image.new("RGB", (1, 1)), "PNG"), filename="dot.png"),
    Case("thin-strip", TOO_SMALL, lambda: encode(Image.new("RGB", (4000, 8)), "JPEG")),
    Case("decompression-bomb-png", TOO_MANY_PIXELS, png_bomb, filename="bomb.png", content_type="image/png"),
    Case("png-header-claims-49-megapixels", TOO_MANY_PIXELS, png_huge_header_tiny_data, filename="face.png"),
    Case("bmp-bomb-header", TOO_MANY_PIXELS, bmp_bomb_header, filename="face.bmp", content_type="image/bmp"),
    Case("jpeg-header-claims-400-megapixels", NOT_READABLE, lambda: jpeg_with_size(20_000, 20_000)),
    Case(
        "over-the-byte-limit",
        Refused("image", "too large: the limit is 1 MB"),
        lambda: face_jpeg() + b"\x00" * (1 << 20),
        settings={"SCAN_MAX_UPLOAD_BYTES": 1 << 20},
    ),
    # Moving pictures and multi-page files
    Case("animated-gif", ANIMATED, lambda: animated("GIF", loop=0, duration=100), filename="face.gif"),
    Case("animated-webp", ANIMATED, lambda: animated("WEBP", duration=100), filename="face.webp"),
    Case("animated-png", ANIMATED, lambda: animated("PNG", duration=100), filename="face.png"),
    Case("tiff-with-40-pages", ANIMATED, tiff_with_many_pages, filename="face.tiff", content_type="image/tiff"),
    # The form around the file
    Case("missing-image-field", Refused("image", "No file was submitted"), None),
    Case(
        "image-sent-as-a-text-field",
        Refused("image", "not a file"),
        None,
        form=lambda people: {"patient": str(people.patient.id), "image": "face.jpg"},
    ),
    Case("file-part-without-a-file-name", Refused("image", "not a file"), face_jpeg, filename=""),
    Case("missing-patient-field", Refused("patient", "required"), face_jpeg, form=lambda people: {}),
    Case(
        "non-integer-patient", Refused("patient", "valid integer"), face_jpeg, form=lambda people: {"patient": "maria"}
    ),
    Case("sql-in-patient", Refused("patient", "valid integer"), face_jpeg, form=lambda people: {"patient": "1 OR 1=1"}),
    Case(
        "patient-id-beyond-64-bits",
        Refused("patient", "Unknown patient"),
        face_jpeg,
        form=lambda people: {"patient": str(2**70)},
    ),
    Case(
        "another-patients-id",
        Refused("patient", "Unknown patient"),
        face_jpeg,
        form=lambda people: {"patient": str(people.other_patient.id)},
    ),
    Case(
        "unknown-patient-id",
        Refused("patient", "Unknown patient"),
        face_jpeg,
        form=lambda people: {"patient": "999999"},
    ),
    Case(
        "unknown-referring-physician",
        Refused("referring_physician", "Unknown physician"),
        face_jpeg,
        form=lambda people: {"patient": str(people.patient.id), "referring_physician": "999999"},
    ),
    # Real photos with traps inside: accepted, stored clean
    Case("jpeg-with-exif-gps-and-orientation", Accepted("done", size=(512, 448)), jpeg_with_exif_and_gps),
    Case("jpeg-with-xmp-and-comment", FACE, jpeg_with_xmp_and_comment),
    Case("jpeg-with-1-mb-icc-profile", FACE, jpeg_with_huge_icc_profile),
    Case("jpeg-zip-polyglot", FACE, jpeg_zip_polyglot),
    Case(
        "png-with-script-and-gps-in-text-chunks",
        FACE,
        png_with_hostile_text,
        filename="face.png",
        content_type="image/png",
    ),
    Case("tiff-with-description-and-gps", FACE, face_tiff_with_tags, filename="face.tif", content_type="image/tiff"),
    Case("webp-with-exif-and-xmp", FACE, face_webp_with_metadata, filename="face.webp", content_type="image/webp"),
    Case("still-gif-with-comment", FACE, still_gif_with_comment, filename="face.gif", content_type="image/gif"),
    Case("cmyk-jpeg", FACE, cmyk_jpeg),
    Case("progressive-jpeg", FACE, progressive_jpeg),
    Case("16-bit-grey-png", FACE, png_16_bit_grey, filename="face.png", content_type="image/png"),
    Case("16-bit-colour-png", FACE, png_16_bit_colour, filename="face.png", content_type="image/png"),
    Case("palette-png-with-transparency", FACE, palette_png_with_transparency, filename="face.png"),
    Case("bmp-photo", FACE, lambda: encode(face(), "BMP"), filename="face.bmp", content_type="image/bmp"),
    # Multi-picture JPEG (cameras, HDR phone photos): the first picture is analysed
    Case("multi-picture-jpeg", FACE, multi_picture_jpeg),
    # The wrong label on a real photo: taken for what it is
    Case("jpeg-sent-as-text-plain", FACE, face_jpeg, filename="notes.txt", content_type="text/plain"),
    Case("png-labelled-image-jpeg", FACE, face_png, filename="face.jpg", content_type="image/jpeg"),
    Case("jpeg-labelled-executable", FACE, face_jpeg, filename="setup.exe", content_type="application/x-msdownload"),
    # File names that try to pick where the photo is stored, or break a page that shows them
    Case("name-with-parent-directories", FACE, face_jpeg, filename="../../etc/passwd.jpg"),
    Case("name-with-windows-parent-directories", FACE, face_jpeg, filename="..\\..\\x.jpg"),
    Case("absolute-posix-name", FACE, face_jpeg, filename="/etc/cron.d/face.jpg"),
    Case("absolute-windows-name", FACE, face_jpeg, filename="C:\\Windows\\System32\\face.jpg"),
    Case("name-with-nul-byte", FACE, face_jpeg, filename="face.php\x00.jpg"),
    Case("server-script-name", FACE, face_jpeg, filename="shell.php"),
    Case("dot-file-name", FACE, face_jpeg, filename=".htaccess"),
    Case("html-in-name", FACE, face_jpeg, filename='"><img src=x onerror=alert(1)>.jpg'),
    Case("unicode-name", FACE, face_jpeg, filename="Пацієнт 😀 résumé ﷽.jpg"),
    Case("right-to-left-override-name", FACE, face_jpeg, filename="photo\u202egpj.exe"),
    Case("name-of-300-characters", FACE, face_jpeg, filename="a" * 300 + ".jpg"),
    Case(
        "name-of-5000-characters",
        Refused("detail", "Multipart form parse error"),
        face_jpeg,
        filename="a" * 5000 + ".jpg",
    ),  # Django caps a part's headers at 10 kB
    # Real images with no usable face: accepted, then rejected by the analysis with a reason
    Case(
        "smallest-accepted-size-without-a-face",
        Accepted("rejected", size=(64, 64)),
        lambda: encode(Image.new("RGB", (64, 64), "grey"), "JPEG"),
    ),
    Case(
        "noise-without-a-face",
        Accepted("rejected", size=(320, 240)),
        lambda: encode(noise(320, 240), "PNG"),
        filename="noise.png",
        content_type="image/png",
    ),
]

REFUSED = [case for case in CORPUS if isinstance(case.expect, Refused)]
ACCEPTED = [case for case in CORPUS if isinstance(case.expect, Accepted)]


def by_id(cases: list[Case]):
    return pytest.mark.parametrize(
        "case",
        [
            pytest.param(
                case, id=case.id, marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
            )
            for case in cases
        ],
    )


# --- Sending and inspecting -----------------------------------------------------------------------------

BOUNDARY = "hostile-upload-7d1f3c"


def multipart(fields: dict, file: tuple[str, str, bytes] | None) -> bytes:
    """A multipart/form-data body as a browser writes it (quotes and line breaks in a file name are
    percent-encoded; everything else, a NUL byte included, goes through as it is)."""
    parts = []
    for name, value in fields.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    if file is not None:
        filename, content_type, data = file
        quoted = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="{quoted}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        parts.append(head.encode("utf-8") + data + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def send(case: Case, people, api):
    client = api(people.carol)
    client.raise_request_exception = False  # a crash must show up as the 500 it would be, not as a traceback
    file = (case.filename, case.content_type, case.body()) if case.body is not None else None
    return client.post(
        URL, data=multipart(case.form(people), file), content_type=f"multipart/form-data; boundary={BOUNDARY}"
    )


def files_under(folder) -> set:
    return {path for path in folder.rglob("*") if path.is_file()}


def jpeg_segments(data: bytes) -> list[int]:
    """The marker of every segment before the image data (SOS), in file order."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    markers, position = [], 2
    while True:
        assert data[position] == 0xFF, f"no marker at byte {position}"
        marker = data[position + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return markers
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length


def assert_clean_jpeg_inside(media_root, path) -> bytes:
    """The stored photo: inside the private folder under a random name, a plain JPEG without metadata."""
    resolved = path.resolve()
    assert resolved.is_relative_to(media_root.resolve())
    assert re.fullmatch(r"scans/\d{4}/\d{2}/[0-9a-f]{32}\.jpg", resolved.relative_to(media_root.resolve()).as_posix())
    data = resolved.read_bytes()
    segments = jpeg_segments(data)
    # APP0 (JFIF), quantisation and Huffman tables, frame header, restart interval, scan header only:
    # no APP1 (EXIF, XMP), APP2 (ICC, MPF), APP13/14 or COM segment.
    assert set(segments) <= {0xE0, 0xDB, 0xC4, 0xC0, 0xC2, 0xDD, 0xDA}, [hex(marker) for marker in segments]
    assert data[6:11] == b"JFIF\x00"
    for secret in SECRETS:
        assert secret not in data, secret
    with Image.open(io.BytesIO(data)) as stored:
        assert stored.format == "JPEG" and stored.mode == "RGB"
        assert not set(stored.info) & {"exif", "icc_profile", "comment", "xmp", "mp", "adobe"}
        assert not stored.getexif()
    return data


# --- Tests ---------------------------------------------------------------------------------------------


def test_the_corpus_holds_at_least_30_hostile_files():
    assert len(CORPUS) >= 30
    assert len({case.id for case in CORPUS}) == len(CORPUS)  # each id names one case


def case_named(case_id: str) -> Case:
    return next(case for case in CORPUS if case.id == case_id)


@pytest.mark.parametrize(
    "case_id",
    [
        "decompression-bomb-png",
        "png-header-claims-49-megapixels",
        "bmp-bomb-header",
        "jpeg-header-claims-400-megapixels",
    ],
)
def test_each_bomb_is_small_on_the_wire_and_huge_once_decoded(case_id, settings, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # read the header of the largest one too
    data = case_named(case_id).body()
    with Image.open(io.BytesIO(data)) as header_only:
        width, height = header_only.size
    assert len(data) < 64 * 1024
    assert width * height > settings.SCAN_MAX_PIXELS


@pytest.mark.parametrize(
    "case_id",
    [
        "jpeg-with-exif-gps-and-orientation",
        "jpeg-with-xmp-and-comment",
        "jpeg-with-1-mb-icc-profile",
        "jpeg-zip-polyglot",
        "png-with-script-and-gps-in-text-chunks",
        "tiff-with-description-and-gps",
        "webp-with-exif-and-xmp",
        "still-gif-with-comment",
    ],
)
def test_the_metadata_the_stored_copy_must_drop_is_really_in_the_file_sent(case_id):
    """Otherwise the absence checks on the stored photo would pass for nothing."""
    data = case_named(case_id).body()
    assert sum(secret in data for secret in SECRETS) >= 2


@by_id(REFUSED)
def test_it_refuses_a_bad_upload_with_a_clear_4xx_and_keeps_nothing(case, people, api, media_root, settings):
    for name, value in case.settings.items():
        setattr(settings, name, value)
    files_before = files_under(media_root)
    response = send(case, people, api)
    assert response.status_code == case.expect.status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    messages = response.json()[case.expect.field]
    messages = [messages] if isinstance(messages, str) else messages  # a parse error has one "detail"
    assert messages and all(isinstance(message, str) for message in messages)
    assert case.expect.says in " ".join(messages)
    assert Scan.objects.count() == 0
    assert files_under(media_root) == files_before


@by_id(ACCEPTED)
def test_it_stores_a_real_photo_as_a_clean_jpeg_and_the_analysis_never_fails(
    case, people, api, media_root, eager_celery, in_memory_channels, django_capture_on_commit_callbacks
):
    files_before = files_under(media_root)
    with django_capture_on_commit_callbacks(execute=True):
        response = send(case, people, api)
    assert response.status_code == 202, response.content[:500]
    scan = Scan.objects.get(id=response.json()["id"])
    assert scan.patient == people.patient and scan.uploaded_by == people.carol
    stored = assert_clean_jpeg_inside(media_root, media_root / scan.image.name)
    with Image.open(io.BytesIO(stored)) as image:
        assert image.size == case.expect.size == (scan.image_width, scan.image_height)
    assert scan.status == case.expect.analysis, scan.status_reason
    if scan.status == Scan.Status.REJECTED:
        assert scan.status_reason  # the person is told why, e.g. no face found
    # Nothing else was written: the photo, and for an analysed one its overlay.
    result = getattr(scan, "result", None)
    own_files = {scan.image} | ({result.overlay, result.heatmap} if result else set())
    expected = {(media_root / stored_file.name).resolve() for stored_file in own_files if stored_file}
    assert {path.resolve() for path in files_under(media_root) - files_before} == expected


def test_the_orientation_is_applied_before_the_metadata_is_dropped(
    people, api, media_root, eager_celery, in_memory_channels, django_capture_on_commit_callbacks
):
    """The phone stored the face sideways with Orientation 6; the clean copy must be upright, since the
    tag that said so is gone (a sideways face would be measured wrong or not found)."""
    with django_capture_on_commit_callbacks(execute=True):
        response = send(case_named("jpeg-with-exif-gps-and-orientation"), people, api)
    scan = Scan.objects.get(id=response.json()["id"])
    with Image.open(media_root / scan.image.name) as stored:
        upright = np.asarray(stored.convert("L"), dtype=np.float32)
    expected = np.asarray(face().crop((0, 0, 512, 448)).convert("L"), dtype=np.float32)
    assert upright.shape == expected.shape
    assert np.abs(upright - expected).mean() < 6  # the same picture, up to JPEG loss
    assert scan.status == Scan.Status.DONE

"""Uploads judged by their structure's cost before any parser reads them (issue 27).

The security review's files (a 1 MB TIFF of 500 tags on one 1 MB blob: +473 MB in the web process; a
14.7 MB PNG of 1.2 million empty chunks: 9.75 s; a 14.5 MB JPEG of 3.6 million comment markers: 7.2 s
and 231 MB), and one of each other kind (tests/hostile_files.py), are refused by the bounded container
walk (inference/engine/containers.py) before Pillow opens them: Pillow is never called, the memory the
check allocates stays under 20 MB, and the refusal comes from the first few kilobytes of the file, so
the walk's work does not grow with what the attacker repeats. The CPU it takes is measured, not
asserted, by bench/upload_cost.py.
"""

from __future__ import annotations

import functools
import io
import tracemalloc
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, PngImagePlugin

from inference.engine import containers
from inference.engine.imaging import ImageRejected, decode_upload, inspect_upload
from scans.models import Scan
from tests.faces import astronaut
from tests.hostile_files import HOSTILE, MB

LIMITS = {"max_bytes": 15 * MB, "max_pixels": 40_000_000}


@pytest.fixture(scope="module")
def hostile() -> dict[str, bytes]:
    return {name: build() for name, build in HOSTILE.items()}


@pytest.fixture
def pillow_forbidden(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Pillow parsed the file")

    monkeypatch.setattr(Image, "open", refuse)


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_file_is_refused_before_pillow_reads_it(name, hostile, pillow_forbidden):
    with pytest.raises(ImageRejected) as refused:
        inspect_upload(hostile[name], **LIMITS)
    message = str(refused.value)
    assert "camera" in message or "single still photo" in message  # says what to send instead


@pytest.mark.parametrize("name", HOSTILE)
def test_the_worker_refuses_it_too_without_parsing(name, hostile, pillow_forbidden):
    # A file stored before this check existed (or queued by another path) meets the same walk in the worker.
    with pytest.raises(ImageRejected):
        decode_upload(hostile[name], **LIMITS)


@pytest.mark.parametrize("name", HOSTILE)
def test_the_header_check_of_a_hostile_file_allocates_under_20_mb(name, hostile):
    raw = hostile[name]
    tracemalloc.start()
    try:
        with pytest.raises(ImageRejected):
            inspect_upload(raw, **LIMITS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * MB


@pytest.mark.parametrize(
    "name",
    [name for name in HOSTILE if not name.startswith("TIFF: 500")],  # refused by its tags' bytes: needs the file
)
def test_the_refusal_comes_from_the_first_kilobytes_whatever_follows(name, hostile):
    # The walk stops at the first count past its limit: what the attacker repeats after it is never read.
    prefix = hostile[name][: 256 * 1024]
    with pytest.raises(containers.StructureRefused):
        containers.check_structure(prefix)


def test_tags_sharing_one_blob_are_refused_even_below_the_tag_count_limit():
    from tests.hostile_files import tiff_tags_on_one_blob

    raw = tiff_tags_on_one_blob(tags=100, blob=MB)  # 100 tags: within MAX_TIFF_TAGS, 100 MB once read
    with pytest.raises(containers.StructureRefused, match="point at the same data"):
        containers.check_structure(raw)


def jpeg_at_the_segment_limit() -> bytes:
    photo = encode(Image.fromarray(astronaut()), "JPEG", quality=90)
    used = sum(1 for index in range(len(photo) - 1) if photo[index] == 0xFF and 0xC0 <= photo[index + 1] <= 0xFE)
    segment = b"\xff\xef" + (65_535).to_bytes(2, "big") + b"\x5a" * 65_533  # APP15, the largest a segment can be
    return photo[:2] + segment * (containers.MAX_JPEG_SEGMENTS - used) + photo[2:]


def png_at_the_compressed_chunk_limit() -> bytes:
    info = PngImagePlugin.PngInfo()
    for index in range(containers.MAX_PNG_COMPRESSED_CHUNKS):
        info.add(b"zTXt", f"Comment{index}".encode() + b"\x00\x00" + zlib.compress(b"A" * 1_000_000, 9))
    return encode(Image.fromarray(astronaut()), "PNG", pnginfo=info)


def tiff_at_the_tag_bytes_limit() -> bytes:
    from tests.hostile_files import tiff_tags_on_one_blob

    # Tags on distinct bytes would be the well-formed kind; one blob counted per tag reaches the same sum.
    raw = tiff_tags_on_one_blob(tags=containers.MAX_TIFF_TAG_BYTES // (512 * 1024), blob=512 * 1024)
    return raw + b"\x00" * containers.MAX_TIFF_TAG_BYTES  # long enough that the sum is within the file


@pytest.mark.parametrize(
    "build", [jpeg_at_the_segment_limit, png_at_the_compressed_chunk_limit, tiff_at_the_tag_bytes_limit]
)
def test_a_file_at_every_limit_passes_and_its_header_check_stays_under_20_mb(build):
    raw = build()
    tracemalloc.start()
    try:
        inspect_upload(raw, max_bytes=len(raw), max_pixels=40_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * MB


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def camera_exif() -> bytes:
    exif = Image.Exif()
    exif.update({0x010F: "Canon", 0x0110: "EOS", 0x0112: 1, 0x0131: "firmware 1.0"})
    exif.get_ifd(0x8769).update({0x9003: "2024:05:01 08:15:00", 0x927C: b"maker note " * 400})
    exif.get_ifd(0x8825).update({1: "N", 2: (38.0, 43.0, 21.5)})
    return exif.tobytes()


@functools.cache
def phone_photos() -> dict[str, bytes]:
    face = Image.fromarray(astronaut())
    large = face.resize((2048, 2048))
    icc = b"profile " * 131_072  # 1 MB: 17 APP2 segments
    return {
        "JPEG with EXIF, GPS, ICC": encode(large, "JPEG", quality=92, exif=camera_exif(), icc_profile=icc),
        "progressive JPEG": encode(large, "JPEG", quality=92, progressive=True, optimize=True),
        "MPO": encode(face, "MPO", save_all=True, append_images=[face.reduce(4)], quality=90),
        "PNG 16-bit": encode(Image.fromarray(astronaut()[..., 0].astype("uint16") * 257), "PNG"),
        "PNG with EXIF": encode(large, "PNG", exif=camera_exif()),
        "TIFF deflate": encode(large, "TIFF", compression="tiff_deflate", description="ward 4"),
        "TIFF with EXIF": encode(face, "TIFF", exif=camera_exif()),
        "TIFF one-row strips": encode(large, "TIFF", compression="raw", strip_size=2048 * 3),
        "WebP with EXIF": encode(large, "WEBP", quality=90, exif=camera_exif()),
        "GIF": encode(large.convert("P", palette=Image.Palette.ADAPTIVE), "GIF", comment=b"ward 4"),
        "BMP": encode(face, "BMP"),
    }


@pytest.mark.parametrize("name", list(phone_photos()))
def test_photos_as_cameras_and_phones_save_them_pass_the_walk_and_decode(name):
    raw = phone_photos()[name]
    header = inspect_upload(raw, **LIMITS)
    assert header.width >= 512 and header.height >= 512
    assert decode_upload(raw, **LIMITS).width == header.width


@pytest.mark.django_db
def test_the_api_answers_the_reviews_files_with_a_400_and_keeps_nothing(people, api, hostile, media_root):
    client = api(people.carol)
    before = {path for path in media_root.rglob("*") if path.is_file()}
    for name in list(HOSTILE)[:3]:
        photo = SimpleUploadedFile("face.jpg", hostile[name])
        response = client.post("/api/v1/scans/", {"patient": people.patient.id, "image": photo}, format="multipart")
        assert response.status_code == 400, name
        assert "camera" in response.json()["image"][0]
    assert not Scan.objects.exists()
    assert {path for path in media_root.rglob("*") if path.is_file()} == before

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from inference.engine.imaging import ImageRejected, decode_upload
from tests.faces import astronaut, jpeg_bytes

LIMITS = {"max_bytes": 5_000_000, "max_pixels": 20_000_000}


def _exif_with_gps_and_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "PhoneMaker"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 0.0)
    return exif


def test_it_keeps_a_plain_jpeg_as_an_upright_rgb_jpeg():
    clean = decode_upload(jpeg_bytes(astronaut()), **LIMITS)
    image = Image.open(io.BytesIO(clean.data))
    assert image.format == "JPEG" and image.mode == "RGB"
    assert (clean.width, clean.height) == (512, 512)
    assert len(clean.sha256) == 64


def test_it_applies_exif_orientation_and_strips_all_metadata_including_gps():
    wide = np.zeros((100, 200, 3), dtype=np.uint8)
    raw = jpeg_bytes(wide, exif=_exif_with_gps_and_orientation(6))  # 6 = rotate 90 degrees clockwise
    clean = decode_upload(raw, **LIMITS)
    assert (clean.width, clean.height) == (100, 200)
    stored = Image.open(io.BytesIO(clean.data))
    assert len(stored.getexif()) == 0
    assert b"PhoneMaker" not in clean.data
    assert "icc_profile" not in stored.info


def test_a_multi_picture_phone_photo_keeps_its_first_picture_upright():
    # MPO (many phones' HDR and portrait photos): the photo itself first, a second picture after it.
    photo = Image.fromarray(np.full((300, 400, 3), 200, dtype=np.uint8))
    depth_map = Image.fromarray(np.zeros((300, 400, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    photo.save(buffer, "MPO", save_all=True, append_images=[depth_map], exif=_exif_with_gps_and_orientation(6))
    clean = decode_upload(buffer.getvalue(), **LIMITS)
    stored = Image.open(io.BytesIO(clean.data))
    assert clean.source_format == "MPO" and stored.format == "JPEG"
    assert (clean.width, clean.height) == (300, 400)  # turned upright
    assert np.asarray(stored).mean() > 190  # the first picture, not the second
    assert len(stored.getexif()) == 0


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "empty"),
        (b"hello, I am text pretending to be a photo", "not a photo we can read"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "not a photo we can read"),
        (b"%PDF-1.4\n1 0 obj<<>>endobj\n", "not a photo we can read"),
    ],
)
def test_it_refuses_files_that_are_not_images_with_a_clear_reason(raw, message):
    with pytest.raises(ImageRejected, match=message):
        decode_upload(raw, **LIMITS)


def test_it_refuses_a_truncated_jpeg():
    raw = jpeg_bytes(astronaut())
    with pytest.raises(ImageRejected, match="damaged or incomplete"):
        decode_upload(raw[: len(raw) // 3], **LIMITS)


def test_it_refuses_a_file_over_the_byte_limit():
    with pytest.raises(ImageRejected, match="limit is"):
        decode_upload(jpeg_bytes(astronaut()), max_bytes=10_000, max_pixels=LIMITS["max_pixels"])


def test_it_refuses_a_decompression_bomb_before_decoding_it():
    bomb = Image.new("L", (8000, 8000))
    buffer = io.BytesIO()
    bomb.save(buffer, format="PNG", optimize=True)
    assert len(buffer.getvalue()) < 200_000  # tiny on disk, 64 megapixels when decoded
    with pytest.raises(ImageRejected, match="megapixel"):
        decode_upload(buffer.getvalue(), max_bytes=LIMITS["max_bytes"], max_pixels=10_000_000)


def test_it_refuses_an_animated_gif():
    frames = [Image.new("RGB", (120, 120), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageRejected, match="Animated"):
        decode_upload(buffer.getvalue(), **LIMITS)


def test_it_refuses_a_tiny_image():
    with pytest.raises(ImageRejected, match="only 20x20"):
        decode_upload(jpeg_bytes(np.zeros((20, 20, 3), dtype=np.uint8)), **LIMITS)


@pytest.mark.parametrize("mode", ["I;16", "CMYK", "P", "RGBA", "L"])
def test_it_converts_other_pixel_formats_to_rgb(mode):
    image = Image.fromarray(astronaut()).convert("L" if mode == "I;16" else "RGB")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image).astype(np.uint16) * 256)
    else:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF" if mode in {"CMYK", "I;16"} else "PNG")
    clean = decode_upload(buffer.getvalue(), **LIMITS)
    decoded = np.asarray(Image.open(io.BytesIO(clean.data)))
    assert decoded.shape == (512, 512, 3)
    # Not blown out to white nor crushed to black: the face is still there.
    assert 40 < decoded.mean() < 220


def test_large_photos_are_analysed_on_a_copy_no_larger_than_the_analysis_size():
    from inference.engine.imaging import ANALYSIS_MAX_SIDE, analysis_copy, open_image

    big = Image.fromarray(astronaut()).resize((3000, 2400))
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=90)
    full = open_image(buffer.getvalue(), max_pixels=10**8)
    drafted = open_image(buffer.getvalue(), max_pixels=10**8, max_side=ANALYSIS_MAX_SIDE)
    assert full.size == (3000, 2400)
    assert drafted.size == (1500, 1200)  # decoded at half scale, still above the analysis size
    copy = analysis_copy(drafted)
    assert copy.size == (1024, 819) and copy.mode == "RGB"
    small = Image.fromarray(astronaut())
    assert analysis_copy(small) is small  # small photos are analysed as they are

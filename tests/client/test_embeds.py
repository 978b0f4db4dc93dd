"""What outputs embed: previews of large images with where the full file is, small images as they
are, light grids, compressed speech; ``full()`` embeds the original on purpose."""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from vomni_nb import _embeds
from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol.wav import pcm_to_wav
from vomni_nb.provenance import Provenance
from vomni_nb.results import ImageBatch, ImageResult, SpeechResult, Stored


@pytest.fixture(autouse=True)
def _default_settings() -> Iterator[None]:
    saved = dataclasses.replace(_embeds.settings)
    yield
    _embeds.configure(**dataclasses.asdict(saved))


def _noise(side: int, seed: int = 1) -> ImageResult:
    """A picture with the weight of diffusion output: smooth shapes under fine grain (PNG stores it badly)."""
    size = (side, side)
    picture = Image.merge("RGB", [Image.linear_gradient("L").resize(size), Image.radial_gradient("L").resize(size),
                                  Image.effect_noise(size, 24)])
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return ImageResult(data=buffer.getvalue(), format="png", width=side, height=side,
                       provenance=Provenance(kind="image", prompt="noise", seed=seed))


def test_a_large_image_is_a_preview_that_says_where_the_file_is(tmp_path: Path) -> None:
    image = dataclasses.replace(_noise(1024), stored=Stored(7, (tmp_path / "store" / "ab.png",)))
    data, metadata = image._repr_mimebundle_()
    assert set(data) == {"text/plain", "text/html"}  # the preview once, in the HTML (no image/jpeg twice)
    assert data["text/html"].count("data:image/jpeg;base64,") == 1 and "data:image/png" not in data["text/html"]
    assert len(data["text/html"]) < len(image.data) // 10
    assert f"full file: {tmp_path / 'store' / 'ab.png'}" in data["text/plain"] and "image.full()" in data["text/plain"]
    assert "history #7" in data["text/html"] and "<a href" not in data["text/html"]  # the store: a path, no link
    assert metadata["vomni_nb"]["history_id"] == 7 and metadata["vomni_nb"]["preview"]["width"] == 512
    full, _ = image.full()._repr_mimebundle_()
    assert base64.b64decode(full["image/png"]) == image.data


def test_a_small_image_is_shown_as_it_is_and_the_threshold_is_a_setting() -> None:
    small = _noise(64)
    data, _ = small._repr_mimebundle_()
    assert base64.b64decode(data["image/png"]) == small.data
    _embeds.configure(preview_above_bytes=1024, preview_side=32)
    data, metadata = small._repr_mimebundle_()
    assert "text/html" in data and metadata["vomni_nb"]["preview"] == {"mime": "image/jpeg", "width": 32, "height": 32}
    with pytest.raises(InvalidRequestError, match="Unknown embed setting"):
        _embeds.configure(preview_size=3)
    with pytest.raises(InvalidRequestError, match="positive whole number"):
        _embeds.configure(preview_side=0)


def test_a_file_under_the_notebook_folder_is_linked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    image = _noise(1024)
    saved = image.save(tmp_path / "out")
    figure = _embeds.figure(image, saved=saved)
    assert figure.link == "out/image-1.png" and '<a href="out/image-1.png"' in figure.html
    assert _embeds.relative_link(Path("/elsewhere/x.png")) is None
    from vomni_nb._rendering import preview_bundle

    data, _ = preview_bundle(image, saved=saved, caption="seed 1 · steps 4")
    assert "seed 1 · steps 4" in data["text/html"] and "out/image-1.png" in data["text/plain"]


def test_grid_cells_are_light_whatever_their_size() -> None:
    cells = [_noise(256, seed) for seed in range(8)]  # 8 x 256 px grainy PNGs
    data, metadata = ImageBatch(tuple(cells))._repr_mimebundle_()
    assert data["text/html"].count("data:image/jpeg;base64,") == 8
    assert len(data["text/html"]) < sum(len(c.data) for c in cells) // 5
    assert [item["seed"] for item in metadata["vomni_nb"]["items"]] == list(range(8))


def test_speech_is_embedded_compressed() -> None:
    pytest.importorskip("av")
    import math
    import struct

    rate = 24000
    pcm = b"".join(struct.pack("<h", int(6000 * math.sin(i / 9))) for i in range(rate * 10))
    speech = SpeechResult(audio=pcm_to_wav(pcm, rate), format="wav", sample_rate=rate, frames=rate * 10)
    data, _ = speech._repr_mimebundle_()
    assert 'src="data:audio/mpeg;base64,' in data["text/html"]
    assert len(data["text/html"]) < len(speech.audio) // 6  # 10 s: ~480 KB of WAV, ~50 KB in the notebook
    _embeds.configure(speech_kbps=None)
    assert 'src="data:audio/wav;base64,' in speech._repr_mimebundle_()[0]["text/html"]
    assert _embeds.compressed_audio("audio/mpeg", b"\xff\xfb" * 40000) == ("audio/mpeg", b"\xff\xfb" * 40000)

"""Result objects: static mime bundles with provenance, safe saving, short reprs."""

from __future__ import annotations

import base64
import dataclasses
import io
import sys

import pytest
from PIL import Image

from vomni_nb._files import save_new
from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol.wav import parse_wav, pcm_to_wav
from vomni_nb.provenance import Provenance
from vomni_nb.results import ChatResult, ImageBatch, ImageResult, SpeechResult, VideoResult


def _image(fmt: str = "PNG", seed: int = 7) -> ImageResult:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 3), "blue").save(buffer, fmt)
    provenance = Provenance(kind="image", prompt="a blue box", seed=seed, params={"size": "6x3"}, model="m",
                            server_url="http://sim", timings={"total_s": 0.1})
    return ImageResult(data=buffer.getvalue(), format=fmt.lower(), width=6, height=3, provenance=provenance)


def test_image_bundle_and_provenance() -> None:
    image = _image()
    data, metadata = image._repr_mimebundle_()
    assert base64.b64decode(data["image/png"]) == image.data
    assert "ImageResult(6x3 png" in data["text/plain"] and "seed=7" in data["text/plain"]
    record = metadata["vomni_nb"]
    assert record["model"] == "m" and record["seed"] == 7 and record["server_url"] == "http://sim"
    assert record["params"] == {"size": "6x3"} and record["timings"] == {"total_s": 0.1}
    jpeg_data, _ = _image("JPEG")._repr_mimebundle_()
    assert "image/jpeg" in jpeg_data
    webp_data, _ = _image("WEBP")._repr_mimebundle_()
    assert "data:image/webp;base64," in webp_data["text/html"] and "image/webp" not in webp_data
    assert len(repr(image)) < 200 and image.to_pil().size == (6, 3)


def test_save_never_overwrites(tmp_path) -> None:  # type: ignore[no-untyped-def]
    image = _image()
    first, second = image.save(tmp_path), image.save(tmp_path)
    assert first.name == "image-7.png" and second.name == "image-7-1.png"
    assert first.read_bytes() == second.read_bytes()
    named = tmp_path / "mine.png"
    named.write_bytes(b"keep me")
    third = image.save(named)
    assert named.read_bytes() == b"keep me" and third.name == "mine-1.png"
    nested = save_new(b"x", tmp_path / "new" / "dir" / "f.bin", "unused")
    assert nested.read_bytes() == b"x"


def test_save_to_a_new_name_without_suffix_makes_a_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    image = _image()
    first, second = image.save(tmp_path / "out"), image.save(tmp_path / "out")
    assert first == tmp_path / "out" / "image-7.png" and second == tmp_path / "out" / "image-7-1.png"


def test_saved_png_carries_its_recipe(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    plain = _image()
    image = dataclasses.replace(plain, provenance=dataclasses.replace(
        plain.provenance, params={"size": "6x3", "num_inference_steps": 4, "guidance_scale": 3.5, "negative_prompt": "blur"},
        prompt="a blue box – ünïcode"))
    with Image.open(image.save(tmp_path)) as saved:
        saved.load()
        assert saved.size == (6, 3)
        assert saved.text["parameters"] == (
            "a blue box – ünïcode\nNegative prompt: blur\nSteps: 4, CFG scale: 3.5, Seed: 7, Size: 6x3, Model: m")
        recipe = json.loads(saved.text["vomni_nb"])
    assert recipe["seed"] == 7 and recipe["params"]["num_inference_steps"] == 4 and recipe["server_url"] == "http://sim"
    # A file that arrived with a recipe (vomni-sim writes one) is saved with ours instead: one format.
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "theirs")
    buffer = io.BytesIO()
    Image.new("RGB", (6, 3), "blue").save(buffer, "PNG", pnginfo=info)
    again = dataclasses.replace(image, data=buffer.getvalue())
    with Image.open(again.save(tmp_path)) as saved:
        saved.load()
        assert saved.text["parameters"].startswith("a blue box") and "vomni_nb" in saved.text
    damaged = dataclasses.replace(image, data=b"\x89PNG\r\n\x1a\nnot really")
    assert damaged.save(tmp_path).read_bytes() == damaged.data  # kept as the server sent it


def test_batch() -> None:
    batch = ImageBatch((_image(seed=1), _image(seed=2)))
    assert len(batch) == 2 and batch[1].seed == 2 and [i.seed for i in batch] == [1, 2]
    data, metadata = batch._repr_mimebundle_()
    assert data["text/html"].count("<img") == 2 and "seeds=[1, 2]" in data["text/plain"]
    assert [item["seed"] for item in metadata["vomni_nb"]["items"]] == [1, 2]


def test_batch_of_large_images_shows_small_previews() -> None:
    import os as _os

    buffer = io.BytesIO()
    Image.frombytes("RGB", (1024, 1024), _os.urandom(1024 * 1024 * 3)).save(buffer, "PNG")  # noise: ~3 MB
    big = ImageResult(data=buffer.getvalue(), format="png", width=1024, height=1024, provenance=Provenance(seed=1))
    data, _ = ImageBatch((big, big))._repr_mimebundle_()
    assert data["text/html"].count("data:image/jpeg;base64,") == 2
    assert len(data["text/html"]) < len(big.data) // 10


def test_speech_bundle(tmp_path) -> None:  # type: ignore[no-untyped-def]
    wav = pcm_to_wav(b"\0\0" * 100, 8000)
    speech = SpeechResult(audio=wav, format="wav", sample_rate=8000, channels=1, frames=100,
                          provenance=Provenance(kind="speech", prompt="hi", params={"voice": "v"}, model="tts",
                                                server_url="http://sim"))
    data, metadata = speech._repr_mimebundle_()
    assert data["text/html"].startswith('<figure style="margin:0"><audio controls src="data:audio/wav;base64,')
    # Issue 7 item 18: the player says what it plays (voice, format, duration).
    assert "<figcaption" in data["text/html"] and "v · wav · 0.01 s</figcaption>" in data["text/html"]
    assert "autoplay" not in data["text/html"] and "loop" not in data["text/html"]
    assert metadata["vomni_nb"]["duration_s"] == 0.0125 and "0.01s" in repr(speech)
    assert speech.save(tmp_path).suffix == ".wav"
    pcm = SpeechResult(audio=b"\0\0" * 10, format="pcm", sample_rate=8000, frames=10)
    pcm_html = pcm._repr_mimebundle_()[0]["text/html"]
    played = base64.b64decode(pcm_html.split("base64,")[1].split('"')[0])
    assert parse_wav(played).pcm == b"\0\0" * 10  # raw PCM is wrapped as WAV for the player
    assert pcm.save(tmp_path).suffix == ".pcm"
    mp3 = SpeechResult(audio=b"\xff\xfb" * 50, format="mp3", sample_rate=None)
    assert "None" not in repr(mp3).split("voice=")[0] and "100 bytes" in repr(mp3)


def test_chat_and_video_bundles(tmp_path) -> None:  # type: ignore[no-untyped-def]
    chat = ChatResult(text="**hello**", provenance=Provenance(kind="chat", model="omni"), usage={"total_tokens": 3},
                      finish_reason="stop")
    data, metadata = chat._repr_mimebundle_()
    assert data["text/markdown"] == "**hello**" and data["text/plain"] == "**hello**" and "text/html" not in data
    assert metadata["vomni_nb"]["usage"] == {"total_tokens": 3} and str(chat) == "**hello**"
    with_audio = ChatResult(text="hi", audio=pcm_to_wav(b"\0\0", 24000), audio_format="wav")
    assert "<audio controls" in with_audio._repr_mimebundle_()[0]["text/markdown"]
    (saved,) = chat.save(tmp_path)
    assert saved.read_text() == "**hello**"
    video = VideoResult(data=b"\0\0\0\x18ftypmp42", id="video_gen_1", width=64, height=64, fps=8.0, duration_s=1.0,
                        provenance=Provenance(kind="video", prompt="boat", seed=3))
    vdata, vmeta = video._repr_mimebundle_()
    assert vdata["text/html"].startswith('<video controls src="data:video/mp4;base64,')
    assert vmeta["vomni_nb"]["id"] == "video_gen_1" and "64x64" in repr(video)
    assert video.save(tmp_path).name == "video_gen_1.mp4"


def test_chat_markdown_shows_dollars_and_tags_as_written_and_one_rendering_with_audio() -> None:
    # Issue 7 item 10: "$5 ... $10" became LaTeX in JupyterLab, "<div>" vanished, and an answer with audio
    # rendered through another (HTML) form. The browser check is tests/test_browser.py.
    from vomni_nb._rendering import markdown_safe

    text = "It costs $5 today and $10 tomorrow; use the <div> tag.\n\n```python\nprice = '$5' if a < b else 0\n```\nand `$x<y` stays."
    safe = markdown_safe(text)
    assert "$" not in safe.split("```")[0] and "<span>&#36;</span>5" in safe and "&lt;div>" in safe
    assert "price = '$5' if a < b else 0" in safe and "`$x<y`" in safe  # code is left exactly as written
    assert markdown_safe("**bold** and *it* - list") == "**bold** and *it* - list"  # markdown itself is kept
    plain = ChatResult(text=text)
    spoken = dataclasses.replace(plain, audio=pcm_to_wav(b"\0\0", 24000), audio_format="wav")
    plain_data, spoken_data = plain._repr_mimebundle_()[0], spoken._repr_mimebundle_()[0]
    assert set(plain_data) == set(spoken_data) == {"text/plain", "text/markdown"}
    assert spoken_data["text/markdown"].startswith(plain_data["text/markdown"] + "\n\n<audio controls")


def test_chat_save_writes_every_part_and_no_empty_markdown(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Issue 7 item 11: save() dropped audio and images, and an audio-only answer wrote a 0-byte .md.
    audio = pcm_to_wav(b"\1\0" * 50, 24000)
    spoken = ChatResult(text="", audio=audio, audio_format="wav")
    (only,) = spoken.save(tmp_path / "a")
    assert only.suffix == ".wav" and only.read_bytes() == audio and not list((tmp_path / "a").glob("*.md"))
    full = ChatResult(text="hello", audio=b"ID3" + b"\0" * 20, audio_format="mp3", images=(_image(seed=1),))
    paths = full.save(tmp_path / "b")
    assert [p.suffix for p in paths] == [".md", ".mp3", ".png"] and len({p.stem.split("-")[1] for p in paths}) == 1
    assert paths[0].read_text() == "hello" and paths[1].read_bytes() == full.audio
    named = full.save(tmp_path / "answer.md")
    assert [p.name for p in named] == ["answer.md", "answer.mp3", "answer-0.png"]
    with pytest.raises(InvalidRequestError, match="a .md name"):
        full.save(tmp_path / "answer.txt")


def test_saving_under_another_format_s_suffix_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Issue 7 item 18: webp.save("x.png") wrote WebP bytes into a .png file.
    webp = _image("WEBP")
    with pytest.raises(InvalidRequestError, match=r"This image is WEBP.*Save it as 'x.webp'.*to_pil\(\).save\('x.png'\)"):
        webp.save(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists() and webp.save(tmp_path / "x.webp").name == "x.webp"
    assert _image("JPEG").save(tmp_path / "y.jpeg").name == "y.jpeg"
    mp3 = SpeechResult(audio=b"\xff\xfb" * 50, format="mp3", sample_rate=None)
    with pytest.raises(InvalidRequestError, match="Save it as 'z.mp3'"):
        mp3.save(tmp_path / "z.wav")


def test_a_batch_slice_is_a_batch_and_video_repr_is_rounded() -> None:
    # Issue 7 item 18: sweep[:2] returned a tuple; a video printed 1.1250000000000002s.
    batch = ImageBatch((_image(seed=1), _image(seed=2), _image(seed=3)), timings={"total_s": 1.0})
    head = batch[:2]
    assert isinstance(head, ImageBatch) and [i.seed for i in head] == [1, 2] and head.timings == {"total_s": 1.0}
    assert "<img" in head._repr_mimebundle_()[0]["text/html"] and isinstance(batch[-1], ImageResult)
    video = VideoResult(data=b"", id="v", width=64, height=48, fps=8.0, num_frames=9, duration_s=1.1250000000000002)
    assert "64x48, 1.13s @ 8 fps, 9 frames" in repr(video)


def test_client_modules_import_no_ipython_or_pillow() -> None:
    import subprocess

    code = ("import sys, vomni_nb.results, vomni_nb.client, vomni_nb.async_client, vomni_nb.protocol; "
            "print([m for m in ('IPython', 'ipywidgets', 'PIL') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

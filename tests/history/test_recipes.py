"""Recipes: the A1111 ``parameters`` infotext, the ``vomni_nb`` JSON chunk, sidecars, and reading them back."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.support.history import make_record, png_bytes
from vomni_nb.errors import InvalidRequestError
from vomni_nb._history import (
    infotext,
    parse_infotext,
    png_with_recipe,
    png_without_recipe,
    read_recipe,
    sidecar_path,
    write_sidecar,
)

# The example A1111 documents in parse_generation_parameters (modules/infotext_utils.py).
A1111_EXAMPLE = (
    "girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy makeup, "
    "by Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate\n"
    "Negative prompt: ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, poorly "
    "drawn face, mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b"
)


def test_infotext_is_the_a1111_layout() -> None:
    text = infotext(make_record(prompt="a red fox, in snow"), size=(32, 24))
    assert text == (
        "a red fox, in snow\n"
        "Negative prompt: blurry\n"
        "Steps: 8, CFG scale: 3.5, Seed: 7, Size: 32x24, Model: Tongyi-MAI/Z-Image-Turbo"
    )


def test_values_with_commas_or_colons_are_json_quoted_as_a1111_does() -> None:
    record = make_record(model="org/model:v2, fp8", params={"sampler": "Euler a", "num_inference_steps": 4})
    last = infotext(record).splitlines()[-1]
    assert 'Model: "org/model:v2, fp8"' in last and "Sampler: Euler a" in last
    assert parse_infotext(infotext(record))["fields"]["Model"] == "org/model:v2, fp8"


def test_parse_reads_a1111s_own_example() -> None:
    parsed = parse_infotext(A1111_EXAMPLE)
    assert parsed["prompt"].startswith("girl with an artist's beret") and parsed["prompt"].endswith("intricate")
    assert parsed["negative_prompt"].startswith("ugly, fat") and parsed["negative_prompt"].endswith("messy drawing")
    assert parsed["fields"] == {
        "Steps": "20", "Sampler": "Euler a", "CFG scale": "7", "Seed": "965400086", "Size": "512x512",
        "Model hash": "45dee52b",
    }


def test_a_last_line_with_fewer_than_three_pairs_is_prompt_text() -> None:
    parsed = parse_infotext("a sign that says: hello\nNote: one pair")
    assert parsed["prompt"] == "a sign that says: hello\nNote: one pair" and parsed["fields"] == {}


_line = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=40).map(str.strip).filter(
    lambda s: bool(s) and not s.startswith("Negative prompt:")
)


@given(
    prompt=st.lists(_line, min_size=1, max_size=3).map("\n".join),
    negative=st.one_of(st.none(), _line),
    steps=st.integers(1, 200),
    cfg=st.floats(0, 20, allow_nan=False).map(lambda x: round(x, 2)),
    seed=st.integers(0, 2**63 - 1),
    model=_line,
)
def test_infotext_round_trips(prompt: str, negative: str | None, steps: int, cfg: float, seed: int, model: str) -> None:
    params = {"num_inference_steps": steps, "guidance_scale": cfg, **({"negative_prompt": negative} if negative else {})}
    parsed = parse_infotext(infotext(make_record(prompt=prompt, params=params, seed=seed, model=model), size=(64, 32)))
    assert parsed["prompt"] == prompt
    assert parsed["negative_prompt"] == (negative or "")
    fields = parsed["fields"]
    assert (fields["Steps"], float(fields["CFG scale"]), fields["Seed"], fields["Size"], fields["Model"]) == (
        str(steps), cfg, str(seed), "64x32", model,
    )


def test_png_recipe_is_readable_by_pillow_without_decoding_and_strips_back_to_the_original() -> None:
    original = png_bytes()
    record = make_record(prompt="a red fox, in snow", extra_key={"kept": True})
    stamped = png_with_recipe(original, record)
    image = Image.open(io.BytesIO(stamped))  # .info before load(): the chunks sit before IDAT
    assert image.info["parameters"].splitlines()[0] == "a red fox, in snow"
    assert json.loads(image.info["vomni_nb"]) == record
    image.load()  # and the pixels still decode
    assert png_without_recipe(stamped) == original
    assert png_with_recipe(stamped, record) == stamped  # stamping again replaces, never doubles


def test_non_latin_prompts_use_utf8_itxt() -> None:
    record = make_record(prompt="狐狸在雪中 🦊")
    stamped = png_with_recipe(png_bytes(), record)
    assert b"iTXtparameters" in stamped and Image.open(io.BytesIO(stamped)).info["parameters"].startswith("狐狸在雪中 🦊")


def test_read_recipe_from_our_png(tmp_path: Path) -> None:
    path = tmp_path / "fox.png"
    record = make_record()
    path.write_bytes(png_with_recipe(png_bytes(), record))
    assert read_recipe(path) == record


def _a1111_png(text: str, compressed: bool = False) -> bytes:
    # Written the way A1111 saves (Pillow's PngInfo.add_text), by a different writer than ours.
    info = PngInfo()
    info.add_text("parameters", text, zip=compressed)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.mark.parametrize("compressed", [False, True])
def test_read_recipe_from_a_foreign_png_with_only_parameters(tmp_path: Path, compressed: bool) -> None:
    path = tmp_path / "a1111.png"
    path.write_bytes(_a1111_png(A1111_EXAMPLE, compressed))
    record = read_recipe(path)
    assert record["kind"] == "image" and record["schema"] == "vomni_nb/1" and record["recipe_source"] == "infotext"
    assert record["seed"] == 965400086 and record["model"] is None
    assert record["params"]["num_inference_steps"] == 20 and record["params"]["guidance_scale"] == 7.0
    assert record["params"]["size"] == "512x512" and record["params"]["sampler"] == "Euler a"
    assert record["params"]["negative_prompt"].startswith("ugly")
    assert record["infotext"]["Model hash"] == "45dee52b"


def test_sidecar_for_speech_and_video(tmp_path: Path) -> None:
    audio = tmp_path / "speech-1.wav"
    audio.write_bytes(b"RIFF....WAVE")
    record = make_record(kind="speech", params={"voice": "vivian"})
    written = write_sidecar(audio, record)
    assert written == sidecar_path(audio) == tmp_path / "speech-1.json"
    assert read_recipe(audio) == record
    assert write_sidecar(audio, record) == written  # the same recipe again is fine
    with pytest.raises(FileExistsError, match="left as it was"):
        write_sidecar(audio, make_record(kind="speech", prompt="something else"))
    assert read_recipe(audio) == record


def test_recipes_never_carry_secrets(tmp_path: Path) -> None:
    record = make_record(params={"api_key": "sk-secret", "headers": {"Authorization": "Bearer sk-secret"}})
    stamped = png_with_recipe(png_bytes(), record)
    assert b"sk-secret" not in stamped
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"x")
    assert "sk-secret" not in write_sidecar(audio, record).read_text()


def test_files_without_a_recipe_say_what_was_looked_for(tmp_path: Path) -> None:
    bare = tmp_path / "bare.png"
    bare.write_bytes(png_bytes())
    with pytest.raises(InvalidRequestError, match="no vomni_nb or parameters chunk, and no bare.json"):
        read_recipe(bare)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0\0\0\x18ftypmp42")
    with pytest.raises(InvalidRequestError, match="no clip.json beside it"):
        read_recipe(video)
    with pytest.raises(InvalidRequestError, match="Cannot read"):
        read_recipe(tmp_path / "missing.png")
    (tmp_path / "other.json").write_text(json.dumps({"not": "ours"}))
    (tmp_path / "other.wav").write_bytes(b"x")
    with pytest.raises(InvalidRequestError, match="not a vomni_nb recipe"):
        read_recipe(tmp_path / "other.wav")


def test_damaged_pngs_are_refused_clearly() -> None:
    good = png_bytes()
    with pytest.raises(InvalidRequestError, match="truncated"):
        png_with_recipe(good[: len(good) // 2], make_record())
    with pytest.raises(InvalidRequestError, match="Not a PNG"):
        png_with_recipe(b"GIF89a....", make_record())
    # A damaged compressed text chunk is skipped, as viewers do, instead of failing the whole read.
    body = b"parameters\0\0" + b"not zlib"
    chunk = len(body).to_bytes(4, "big") + b"zTXt" + body + zlib.crc32(b"zTXt" + body).to_bytes(4, "big")
    damaged = good[:33] + chunk + good[33:]
    assert png_with_recipe(damaged, make_record()) != damaged


def test_saving_with_a_sidecar_never_overwrites_either_file(tmp_path: Path) -> None:
    from vomni_nb._files import save_with_recipe

    record = make_record(kind="speech", prompt="hello")
    first = save_with_recipe(b"RIFF one", tmp_path, "speech.wav", record)
    (tmp_path / "speech-1.json").write_text("somebody's notes")  # the next name's sidecar is taken
    second = save_with_recipe(b"RIFF two", tmp_path, "speech.wav", record)
    assert (first.name, second.name) == ("speech.wav", "speech-2.wav")
    assert not (tmp_path / "speech-1.wav").exists() and (tmp_path / "speech-1.json").read_text() == "somebody's notes"
    assert read_recipe(second)["prompt"] == "hello" and second.read_bytes() == b"RIFF two"
    assert first.read_bytes() == b"RIFF one" and read_recipe(first) == read_recipe(second)
    with pytest.raises(InvalidRequestError, match="its own recipe file"):
        save_with_recipe(b"{}", tmp_path / "x.json", "unused", record)


def test_a_foreign_infotext_with_odd_fields_keeps_what_it_can_read() -> None:
    from vomni_nb._recipes import record_from_infotext

    text = ('a castle\non a hill\nNegative prompt: rain,\nfog\n'
            'Steps: many, CFG scale: high, Size: big, Seed: 7, Denoising strength: 0.4, '
            'Prompt: "bad \\q escape", Model: "m, v2"')
    record = record_from_infotext(text)
    assert record["prompt"] == "a castle\non a hill" and record["params"]["negative_prompt"] == "rain,\nfog"
    # Unreadable numbers and sizes are left out of params (still kept, as written, under "infotext").
    assert record["params"] == {"negative_prompt": "rain,\nfog", "strength": 0.4}
    assert record["seed"] == 7 and record["model"] == "m, v2"
    assert record["infotext"]["Steps"] == "many" and record["infotext"]["Prompt"] == '"bad \\q escape"'
    bare = record_from_infotext("just a prompt, nothing else")
    assert bare["prompt"] == "just a prompt, nothing else" and bare["params"] == {} and bare["seed"] is None


def test_every_png_text_chunk_kind_is_read_and_damaged_ones_are_skipped() -> None:
    from vomni_nb._recipes import png_text_chunks

    info = PngInfo()
    info.add_text("plain", "latin text")
    info.add_text("squeezed", "compressed " * 20, zip=True)
    info.add_itxt("wide", "ünïcödé text", lang="de", tkey="breit")
    info.add_itxt("wide-zip", "ünïcödé " * 20, zip=True)
    info.add_text("plain", "a second chunk of the same keyword")
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG", pnginfo=info)
    texts = png_text_chunks(buffer.getvalue())
    assert texts == {"plain": "latin text", "squeezed": "compressed " * 20, "wide": "ünïcödé text",
                     "wide-zip": "ünïcödé " * 20}  # the first of a repeated keyword wins
    good = png_bytes()
    for kind, body in ((b"iTXt", b"cut"), (b"iTXt", b"key\0\1\0\0\0not zlib"), (b"tEXt", b"k\0v")):
        chunk = len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
        texts = png_text_chunks(good[:33] + chunk + good[33:])
        assert texts == ({"k": "v"} if kind == b"tEXt" else {})
    with pytest.raises(InvalidRequestError, match="no IHDR or no IEND"):
        png_text_chunks(good[:8] + good[33:])  # the IHDR chunk cut out
    with pytest.raises(InvalidRequestError, match="truncated inside its b'IDAT' chunk"):
        png_text_chunks(good[:41] + b"\0\0\0\xffIDAT" + b"\0" * 8)


def test_a_recipe_file_that_cannot_be_read_or_parsed_says_which(tmp_path: Path) -> None:
    audio = tmp_path / "speech.wav"
    audio.write_bytes(b"RIFF")
    (tmp_path / "speech.json").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(InvalidRequestError, match="Cannot read the recipe .*speech.json"):
        read_recipe(audio)
    (tmp_path / "speech.json").write_text("{not json")
    with pytest.raises(InvalidRequestError, match="speech.json is not valid JSON"):
        read_recipe(audio)
    stamped = tmp_path / "stamped.png"
    info = PngInfo()
    info.add_text("vomni_nb", "{broken")
    Image.new("RGB", (4, 4)).save(stamped, format="PNG", pnginfo=info)
    with pytest.raises(InvalidRequestError, match="The vomni_nb chunk of .*stamped.png is not valid JSON"):
        read_recipe(stamped)

"""Request bodies match the wire reference (§3.3-§3.12)."""

from __future__ import annotations

import email.parser
import email.policy
import json

import pytest

from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol import build as B
from vomni_nb.protocol.dataurl import decode_data_url


def _parts(spec: B.RequestSpec) -> dict[str, tuple[str | None, bytes]]:
    """Parse our multipart body with the stdlib's MIME parser (an independent reader)."""
    assert spec.content is not None and spec.content_type is not None
    raw = f"Content-Type: {spec.content_type}\r\n\r\n".encode() + spec.content
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = (part.get_filename(), part.get_payload(decode=True))
    return parts


def test_image_request_body() -> None:
    spec, params = B.build_image_request(
        "a fox", size=(64, 32), n=2, steps=4, guidance=3, negative="blur", seed=7, output_format="jpg"
    )
    assert (spec.method, spec.path) == ("POST", "/v1/images/generations")
    assert spec.json == {
        "prompt": "a fox", "size": "64x32", "n": 2, "num_inference_steps": 4, "guidance_scale": 3.0,
        "negative_prompt": "blur", "seed": 7, "output_format": "jpeg", "response_format": "b64_json",
    }
    assert "response_format" not in params and params["seed"] == 7


def test_chat_image_request_puts_diffusion_keys_at_top_level() -> None:
    spec, params = B.build_chat_image_request("a fox", size="64x64", n=3, seed=1, model="m")
    assert spec.path == "/v1/chat/completions"
    assert spec.json["messages"] == [{"role": "user", "content": "a fox"}]
    assert spec.json["num_outputs_per_prompt"] == 3 and "n" not in spec.json
    assert spec.json["size"] == "64x64" and spec.json["seed"] == 1 and spec.json["model"] == "m"
    assert params["via"] == "chat"


def test_chat_request_with_media_and_audio_options() -> None:
    spec, params = B.build_chat_request(
        "what is this?", system="be brief", images=[b"\x89PNG...."], audio=[b"RIFF....WAVE"],
        modalities=["text", "audio"], voice="ethan", audio_format="pcm", stream=True,
    )
    system, user = spec.json["messages"]
    assert system == {"role": "system", "content": "be brief"}
    kinds = [part["type"] for part in user["content"]]
    assert kinds == ["text", "image_url", "audio_url"]
    assert decode_data_url(user["content"][1]["image_url"]["url"]) == ("image/png", b"\x89PNG....")
    assert spec.json["audio"] == {"format": "pcm"} and spec.json["stream"] is True and spec.stream
    assert params["prompt"] == "what is this?" and "messages" not in params


def test_chat_request_takes_one_path_or_bytes_where_a_list_is_expected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    picture = tmp_path / "red.png"
    picture.write_bytes(b"\x89PNG....")
    spec, _ = B.build_chat_request("what is this?", images=str(picture), audio=b"RIFF....WAVE", modalities="text,audio")
    kinds = [part["type"] for part in spec.json["messages"][0]["content"]]
    assert kinds == ["text", "image_url", "audio_url"] and spec.json["modalities"] == ["text", "audio"]
    with pytest.raises(InvalidRequestError, match="nope.wav"):
        B.build_chat_request("hi", audio="nope.wav")


def test_speech_request_modes() -> None:
    plain, _ = B.build_speech_request("hi", voice="vivian")
    assert plain.json == {"input": "hi", "voice": "vivian", "response_format": "wav"} and not plain.stream
    raw, _ = B.build_speech_request("hi", stream_mode="audio", response_format="pcm")
    assert raw.json["stream_format"] == "audio" and raw.json["stream"] is False and raw.stream
    sse, _ = B.build_speech_request("hi", stream_mode="sse")
    assert sse.json["stream_format"] == "sse" and sse.json["stream"] is True


def test_edit_request_is_multipart_with_files() -> None:
    spec, params = B.build_edit_request("make it blue", [b"\x89PNG-a", b"\xff\xd8-b"], seed=5, n=2)
    parts = _parts(spec)
    assert parts["prompt"] == (None, b"make it blue")
    assert parts["seed"] == (None, b"5") and parts["n"] == (None, b"2") and parts["size"] == (None, b"auto")
    assert parts["image"][1] in (b"\x89PNG-a", b"\xff\xd8-b")
    assert spec.content is not None and spec.content.count(b'name="image"') == 2
    assert params["size"] == "auto"


def test_video_request_is_multipart_even_without_files() -> None:
    spec, params = B.build_video_request("a boat", size="64x64", seconds=2, fps=8, seed=3, extra={"lora": {"a": 1}})
    assert spec.content_type is not None and spec.content_type.startswith("multipart/form-data; boundary=")
    parts = _parts(spec)
    assert parts["seconds"] == (None, b"2") and parts["fps"] == (None, b"8.0")
    assert json.loads(parts["lora"][1]) == {"a": 1}
    assert params["seconds"] == "2"


def test_voice_upload_form(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sample = tmp_path / "me.wav"
    sample.write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    parts = _parts(B.build_voice_upload("me", sample, consent="I agree", ref_text="hello"))
    assert parts["audio_sample"] == ("me.wav", b"RIFF\x00\x00\x00\x00WAVE")
    assert parts["consent"] == (None, b"I agree") and parts["ref_text"] == (None, b"hello")


def test_load_media_from_results_and_quoting() -> None:
    from vomni_nb.results import ImageResult

    image = ImageResult(data=b"\x89PNGxx", format="png", width=1, height=1)
    assert B.load_media(image).mime_type == "image/png"
    body, _ = B.encode_multipart({'we"ird\r\nname': "v"})
    assert b'name="we%22ird%0D%0Aname"' in body


def test_media_from_every_kind_of_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vomni_nb.protocol.media import MediaFile, load_media, sniff_mime

    given = MediaFile("a.png", b"\x89PNG", "image/png")
    assert load_media(given) is given
    wav = b"RIFF\x00\x00\x00\x00WAVEfmt "

    class Speech:  # a result that holds audio, not data
        audio = wav
        mime_type = ""

    assert load_media(Speech()).mime_type == "audio/wav" and load_media(Speech()).filename.startswith("upload")
    with pytest.raises(InvalidRequestError, match="Cannot use int as media"):
        load_media(5)
    with pytest.raises(InvalidRequestError, match="No such file"):
        load_media(tmp_path / "missing.png")
    assert [sniff_mime(d) for d in (b"\xff\xd8x", b"RIFF\0\0\0\0WEBP", b"\0\0\0\0ftypmp4", b"??")] == \
        ["image/jpeg", "image/webp", "video/mp4", None]


def test_chat_and_speech_options_are_checked_and_sent() -> None:
    spec, params = B.build_chat_request([{"role": "user", "content": "hi"}], system="be brief", temperature=0.5,
                                        images=None)
    assert spec.json["messages"][0] == {"role": "system", "content": "be brief"} and spec.json["temperature"] == 0.5
    with pytest.raises(InvalidRequestError, match="temperature must be from 0.0 to 2.0"):
        B.build_chat_request("hi", temperature=3)
    spec, params = B.build_speech_request("hello", sample_rate=16000)
    assert spec.json["sample_rate"] == 16000
    with pytest.raises(InvalidRequestError, match="sample_rate must be"):
        B.build_speech_request("hello", sample_rate=0)

"""POST /v1/chat/completions for omni, diffusion, TTS and video models (reference §3.3–3.5, §4–5)."""

from __future__ import annotations

import base64
import io
import json
import re
import wave

import httpx
import pytest
from PIL import Image

from tests.support.sims import OMNI_MODEL

pytestmark = pytest.mark.timeout(90)
CHAT = "/v1/chat/completions"
TOP_KEYS = [
    "id", "object", "created", "model", "choices", "service_tier", "system_fingerprint", "usage", "prompt_logprobs",
    "prompt_token_ids", "prompt_text", "kv_transfer_params", "ec_transfer_params", "metrics",
]
CHOICE_KEYS = ["index", "message", "logprobs", "finish_reason", "stop_reason", "token_ids", "routed_experts"]
MESSAGE_KEYS = ["role", "content", "refusal", "annotations", "audio", "function_call", "reasoning"]


def ask(server, text: str = "What is a lighthouse?", **body) -> httpx.Response:
    payload = {"messages": [{"role": "user", "content": text}], **body}
    return httpx.post(server.url + CHAT, json=payload, timeout=60)


def events(raw: bytes) -> list[str]:
    """SSE events from the raw body, asserting the framing: ``data: <x>\\n\\n`` and nothing else."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n")
    parts = text[:-2].split("\n\n")
    assert all(p.startswith("data: ") and "\n" not in p for p in parts)
    return [p[len("data: "):] for p in parts]


def stream(server, headers: dict | None = None, **body) -> httpx.Response:
    payload = {"messages": [{"role": "user", "content": "Stream please"}], "stream": True, **body}
    return httpx.post(server.url + CHAT, json=payload, headers=headers, timeout=60)


def wav_info(data: bytes) -> tuple[int, int, int]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getframerate(), w.getnchannels(), w.getnframes()


def error_of(reply: httpx.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text
    return reply.json()["error"]


# --- omni, non-streaming --------------------------------------------------------------------------


def test_text_reply_has_every_field_and_is_deterministic(omni_server) -> None:
    reply = ask(omni_server, modalities=["text"], seed=7)
    body = reply.json()
    assert list(body) == TOP_KEYS
    assert (body["object"], body["model"]) == ("chat.completion", OMNI_MODEL)
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{32}", body["id"])
    choice = body["choices"][0]
    assert list(choice) == CHOICE_KEYS and list(choice["message"]) == MESSAGE_KEYS
    content = choice["message"]["content"]
    assert content.startswith("[vomni-sim]") and "What is a lighthouse?" in content
    assert choice["message"]["audio"] is None and choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert ask(omni_server, modalities=["text"], seed=7).json()["choices"][0]["message"]["content"] == content
    assert ask(omni_server, modalities=["text"], seed=8).json()["choices"][0]["message"]["content"] != content


def test_default_modalities_merge_text_and_audio_in_one_choice(omni_server) -> None:
    reply = ask(omni_server, "Say hi", seed=1)
    assert reply.headers["x-vomni-speech-engine"] in ("espeak-ng", "tones")  # says how it "spoke"
    body = reply.json()
    assert len(body["choices"]) == 1
    choice = body["choices"][0]
    assert choice["message"]["content"].startswith("[vomni-sim]")
    audio = choice["message"]["audio"]
    assert list(audio) == ["id", "data", "expires_at", "transcript"]
    assert re.fullmatch(r"audio-[0-9a-f]{16}", audio["id"]) and audio["transcript"] == ""
    assert audio["expires_at"] > body["created"] + 23 * 3600
    rate, channels, frames = wav_info(base64.b64decode(audio["data"]))
    assert choice["audio_metadata"] == {"format": "wav", "sample_rate_hz": 24000, "frame_count": frames, "channels": 1}
    assert (rate, channels) == (24000, 1) and frames > 2400


def test_audio_only_choice_finishes_with_stop_but_merged_keeps_text_reason(omni_server) -> None:
    # _create_audio_choice always says "stop"; _merge_audio_choices keeps the text choice's reason.
    audio_only = ask(omni_server, "Hi", modalities=["audio"], max_tokens=2).json()["choices"][0]
    assert audio_only["finish_reason"] == "stop"
    merged = ask(omni_server, "Hi", max_tokens=2).json()["choices"][0]
    assert merged["finish_reason"] == "length" and merged["message"]["audio"] is not None


def test_only_max_tokens_limits_the_omni_reply(omni_server) -> None:
    # SC _apply_request_overrides copies max_tokens, not max_completion_tokens, onto the thinker.
    assert ask(omni_server, modalities=["text"], max_tokens=2).json()["usage"]["completion_tokens"] == 2
    ignored = ask(omni_server, modalities=["text"], max_completion_tokens=2).json()
    assert ignored["usage"]["completion_tokens"] > 2 and ignored["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(("asked", "reported"), [("pcm16", "pcm"), ("flac", "flac"), ("mp3", "mp3")])
def test_audio_only_reply_in_other_formats(omni_server, asked: str, reported: str) -> None:
    choice = ask(omni_server, "Hi", modalities=["audio"], audio={"format": asked}).json()["choices"][0]
    assert choice["message"]["content"] is None
    assert choice["audio_metadata"]["format"] == reported
    data = base64.b64decode(choice["message"]["audio"]["data"])
    assert not data.startswith(b"RIFF") and len(data) > 100


def test_omni_request_errors(omni_server) -> None:
    assert error_of(ask(omni_server, audio={"format": "aac"}), 400) == {
        "message": "Invalid audio format 'aac'. Supported formats: ['flac', 'mp3', 'opus', 'pcm', 'pcm16', 'wav']",
        "type": "BadRequestError", "param": None, "code": 400,
    }
    assert error_of(ask(omni_server, modalities=["video"]), 400)["message"] == (
        "Unsupported output modalities video for this model. Supported modalities: audio, text"
    )
    not_a_list = error_of(ask(omni_server, modalities="text"), 400)
    assert (not_a_list["type"], not_a_list["message"]) == (
        "Bad Request", 'modalities must be a list of strings, e.g. ["text", "audio", "image"]'
    )
    assert error_of(ask(omni_server, logprobs="yes"), 400)["message"] == "logprobs must be a boolean (true or false)"
    assert error_of(ask(omni_server, model="gpt-4"), 404) == {
        "message": "The model `gpt-4` does not exist.", "type": "NotFoundError", "param": "model", "code": 404,
    }
    missing = httpx.post(omni_server.url + CHAT, json={"model": OMNI_MODEL})
    assert error_of(missing, 400)["param"] == "body.messages"


def test_model_may_be_named_or_omitted_and_request_id_is_used(omni_server) -> None:
    reply = httpx.post(
        omni_server.url + CHAT,
        json={"model": OMNI_MODEL, "messages": [{"role": "user", "content": "x"}], "modalities": ["text"]},
        headers={"X-Request-Id": "nb-42"},
    )
    assert reply.json()["id"] == "chatcmpl-nb-42"


def test_max_tokens_cuts_with_finish_reason_length(omni_server) -> None:
    body = ask(omni_server, modalities=["text"], max_tokens=4).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 4
    assert len(body["choices"][0]["message"]["content"].split()) == 4


def test_multimodal_inputs_are_described(omni_server) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (40, 30), (210, 30, 30)).save(picture, "PNG")
    sound = io.BytesIO()
    with wave.open(sound, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\0\0" * 8000)
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()}},
        {"type": "input_audio", "input_audio": {"data": base64.b64encode(sound.getvalue()).decode(), "format": "wav"}},
    ]
    reply = httpx.post(
        omni_server.url + CHAT,
        json={"messages": [{"role": "user", "content": content}], "modalities": ["text"]},
    ).json()["choices"][0]["message"]["content"]
    assert "What is in these?" in reply
    assert "40x30 image" in reply and "#d21e1e" in reply and "mostly red" in reply
    assert "0.50 s of audio" in reply


# --- omni, streaming ------------------------------------------------------------------------------


def test_text_stream_framing_byte_for_byte(omni_server) -> None:
    reply = stream(omni_server, headers={"X-Request-Id": "s1"}, modalities=["text"], seed=3)
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    raw = events(reply.content)
    assert raw[-1] == "[DONE]"
    chunks = [json.loads(e) for e in raw[:-1]]
    for event, chunk in zip(raw, chunks):  # compact JSON, exactly as model_dump_json writes it
        assert event == json.dumps(chunk, separators=(",", ":"), ensure_ascii=False)
    created = chunks[0]["created"]
    assert raw[0] == (
        '{"id":"chatcmpl-s1","object":"chat.completion.chunk","created":%d,"model":"%s","choices":[{"index":0,'
        '"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"prompt_token_ids":null,'
        '"prompt_text":null,"modality":"text"}' % (created, OMNI_MODEL)
    )
    middle = chunks[1]
    # Delta chunks set metrics explicitly (SC L2147), so exclude_unset keeps it, before modality.
    assert list(middle) == ["id", "object", "created", "model", "choices", "metrics", "modality"]
    assert middle["metrics"] == {}
    assert list(middle["choices"][0]) == ["index", "delta", "logprobs", "finish_reason", "token_ids"]
    # The finishing text chunk also sets stop_reason (SC L2126-2133).
    assert list(chunks[-1]["choices"][0]) == ["index", "delta", "logprobs", "finish_reason", "stop_reason",
                                              "token_ids"]
    assert chunks[-1]["choices"][0]["stop_reason"] is None
    assert chunks[-1]["metrics"] is None  # the finishing output carries its stage event, filtered to None
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
    whole = ask(omni_server, "Stream please", modalities=["text"], seed=3).json()["choices"][0]["message"]["content"]
    assert text == whole


def test_include_usage_final_chunk(omni_server) -> None:
    raw = events(stream(omni_server, modalities=["text"], max_tokens=3, stream_options={"include_usage": True}).content)
    usage_chunk = json.loads(raw[-2])
    assert list(usage_chunk) == ["id", "object", "created", "model", "choices", "usage"]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 3
    assert list(usage_chunk["usage"]) == ["prompt_tokens", "total_tokens", "completion_tokens"]
    assert json.loads(raw[-3])["choices"][0]["finish_reason"] == "length"


def test_audio_streams_as_wav_files_in_delta_content(omni_server) -> None:
    chunks = [json.loads(e) for e in events(stream(omni_server, max_tokens=6, seed=2).content)[:-1]]
    text = [c for c in chunks if c.get("modality") == "text"]
    audio = [c for c in chunks if c.get("modality") == "audio"]
    assert text and len(audio) >= 2 and chunks.index(audio[0]) > chunks.index(text[-1])
    pcm = b""
    for chunk in audio:
        choice = chunk["choices"][0]
        assert list(choice) == ["index", "delta", "logprobs", "finish_reason", "stop_reason", "token_ids",
                                "audio_metadata"]
        assert chunk["usage"]["completion_tokens"] == 0
        assert list(chunk) == ["id", "object", "created", "model", "choices", "usage", "metrics", "modality"]
        assert chunk["metrics"] == ({} if chunk is not audio[-1] else None)
        data = base64.b64decode(choice["delta"]["content"])
        assert data.startswith(b"RIFF")  # each chunk is a whole file with its own header
        rate, channels, frames = wav_info(data)
        assert choice["audio_metadata"] == {"format": "wav", "sample_rate_hz": 24000, "frame_count": frames,
                                            "channels": 1}
        with wave.open(io.BytesIO(data)) as w:
            pcm += w.readframes(frames)
    finishing = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]]
    assert finishing == ["stop"] and audio[-1]["choices"][0]["finish_reason"] == "stop"
    # The last text chunk sets stop_reason and a null finish_reason: audio is still to come.
    assert text[-1]["choices"][0] == {"index": 0, "delta": text[-1]["choices"][0]["delta"], "logprobs": None,
                                      "finish_reason": None, "stop_reason": None, "token_ids": None}
    assert len(pcm) > 24000  # concatenated PCM is the whole utterance


def test_fallback_stop_chunk_sets_only_index_delta_and_finish_reason(omni_server) -> None:
    # SC L2296: ChatCompletionResponseStreamChoice(index, delta=DeltaMessage(), finish_reason="stop"),
    # dumped with exclude_unset: no logprobs, no modality.
    raw = events(stream(omni_server, modalities=["text"], max_tokens=0).content)
    assert raw[-1] == "[DONE]"
    fallback = json.loads(raw[-2])
    assert list(fallback) == ["id", "object", "created", "model", "choices"]
    assert fallback["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]


def test_audio_only_stream_has_no_role_chunk(omni_server) -> None:
    chunks = [json.loads(e) for e in events(stream(omni_server, modalities=["audio"], max_tokens=2).content)[:-1]]
    assert {c["modality"] for c in chunks} == {"audio"}


def test_midstream_error_is_in_band(start_sim) -> None:
    sim = start_sim(OMNI_MODEL, "--midstream-error-after", "3", "--tokens-per-second", "1000")
    reply = stream(sim, modalities=["text"])
    assert reply.status_code == 200
    raw = events(reply.content)
    assert len(raw) == 5 and raw[-1] == "[DONE]"
    assert all("chat.completion.chunk" in e for e in raw[:3])
    assert raw[3] == json.dumps({"error": {
        "message": "Simulated engine error in the middle of a stream (vomni-sim --midstream-error-after).",
        "type": "InternalServerError", "param": None, "code": 500}})


# --- diffusion ------------------------------------------------------------------------------------


def image_chat(server, text: str = "a red fox", **body) -> httpx.Response:
    # X-Request-Id is not used on the pure-diffusion path (reference §1, "Request id").
    return httpx.post(server.url + CHAT, json={"messages": [{"role": "user", "content": text}], **body}, timeout=60,
                      headers={"X-Request-Id": "ignored"})


def image_items(reply: httpx.Response) -> list[dict]:
    return reply.json()["choices"][0]["message"]["content"]


def test_diffusion_chat_returns_png_data_urls(image_server) -> None:
    reply = image_chat(image_server, "a red fox in snow", size="64x48", seed=4, num_outputs_per_prompt=2,
                       stream=True, model="anything", headers_ignored=True)
    assert reply.headers["content-type"] == "application/json"  # stream is ignored
    body = reply.json()
    assert list(body) == TOP_KEYS and re.fullmatch(r"chatcmpl-[0-9a-f]{16}", body["id"])
    items = body["choices"][0]["message"]["content"]
    assert len(items) == 2 and body["choices"][0]["finish_reason"] == "stop"
    for item in items:
        assert list(item) == ["type", "image_url", "stage_durations", "peak_memory_mb"]
        assert item["image_url"]["url"].startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(item["image_url"]["url"].split(",", 1)[1])))
        assert (image.format, image.size) == ("PNG", (64, 48))
    assert body["usage"] == {"prompt_tokens": 5, "total_tokens": 6, "completion_tokens": 1,
                             "prompt_tokens_details": None}


def test_extra_body_literal_key_equals_top_level(image_server) -> None:
    top = image_items(image_chat(image_server, width=32, height=32, seed=5, num_inference_steps=4))
    nested = image_items(image_chat(image_server, seed=5, extra_body={"width": 32, "height": 32,
                                                                        "num_inference_steps": 4}))
    assert top[0]["image_url"] == nested[0]["image_url"]
    other = image_items(image_chat(image_server, width=32, height=32, seed=6, num_inference_steps=4))
    assert other[0]["image_url"] != top[0]["image_url"]


def test_diffusion_chat_errors(image_server) -> None:
    assert error_of(image_chat(image_server, size="32x32", extra_body={"size": "64x64"}), 400) == {
        "message": 'Diffusion request parameters were provided more than once: "size": request.size, '
                   "request.extra_body.size.",
        "type": "BadRequestError", "param": None, "code": 400,
    }
    assert "quality must be one of" in error_of(image_chat(image_server, quality="ultra"), 400)["message"]
    assert "Invalid layers value 11" in error_of(image_chat(image_server, layers=11), 400)["message"]
    assert "Unsupported output modalities audio" in error_of(image_chat(image_server, modalities=["audio"]), 400)["message"]


def test_diffusion_chat_text_modality_and_reference_image(image_server) -> None:
    text = image_chat(image_server, "describe a fox", modalities=["text"]).json()["choices"][0]["message"]["content"]
    assert isinstance(text, str) and text.startswith("[vomni-sim]")
    picture = io.BytesIO()
    Image.new("RGB", (20, 20), (0, 200, 0)).save(picture, "PNG")
    url = "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()
    content = [{"type": "text", "text": "make it night"}, {"type": "image_url", "image_url": {"url": url}}]
    reply = httpx.post(image_server.url + CHAT, json={"messages": [{"role": "user", "content": content}],
                                                       "size": "20x20", "seed": 1})
    assert len(image_items(reply)) == 1


def test_tts_model_has_no_chat_but_answers_200(tts_server) -> None:
    reply = ask(tts_server)
    assert reply.status_code == 200
    assert reply.json() == {"error": {"message": "The model does not support Chat Completions API",
                                      "type": "BadRequestError", "param": None, "code": 400}}


@pytest.mark.parametrize("extra", [{}, {"modalities": ["text"]}, {"stream": True}])
def test_video_model_chat_fails_after_generating(video_server, extra) -> None:
    # Issue 13 item 4: 0.30.0's chat has no video output branch (reference §3.4, §10); its PNG step gets the Wan
    # frame array and raises, and the handler answers 500 with its error helper's default type.
    reply = ask(video_server, "a wave", **extra)
    assert reply.status_code == 500
    assert reply.json() == {"error": {
        "message": "Image generation failed: 'numpy.ndarray' object has no attribute 'save'",
        "type": "BadRequestError", "param": None, "code": 500,
    }}
    video_server.wait_for_log("Diffusion chat completion failed: 'numpy.ndarray' object has no attribute 'save'")


def test_omni_speaker_is_validated(omni_server) -> None:
    assert ask(omni_server, "Hi", modalities=["audio"], voice="Ethan", max_tokens=2).status_code == 200
    assert error_of(ask(omni_server, voice="Bob"), 400)["message"] == (
        "Invalid speaker 'Bob'. Supported: aiden, chelsie, ethan"
    )
    # audio.voice is ignored by 0.30.0; only the top-level voice/speaker is read.
    assert ask(omni_server, "Hi", modalities=["audio"], audio={"voice": "Bob"}, max_tokens=2).status_code == 200


def test_continuous_usage_stats(omni_server) -> None:
    options = {"include_usage": True, "continuous_usage_stats": True}
    raw = events(stream(omni_server, modalities=["text"], max_tokens=3, stream_options=options).content)
    counted = [json.loads(e)["usage"]["completion_tokens"] for e in raw[1:4]]
    assert counted == [1, 2, 3]
    assert list(json.loads(raw[1])) == ["id", "object", "created", "model", "choices", "usage", "metrics",
                                        "modality"]
    # The role chunk carries usage too, with completion_tokens 0 (SC L1632).
    role_chunk = json.loads(raw[0])
    assert list(role_chunk) == ["id", "object", "created", "model", "choices", "usage", "prompt_token_ids",
                                "prompt_text", "modality"]
    assert role_chunk["usage"]["completion_tokens"] == 0

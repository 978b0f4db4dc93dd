"""The official openai SDK against vomni-sim, used the way vLLM-Omni's docs show.

Chat and images part (sim-core). Speech/videos tests may be added below by sim-media.
"""

from __future__ import annotations

import base64
import io
import wave

import openai
import pytest
from PIL import Image

from tests.support.sims import IMAGE_MODEL, OMNI_MODEL

pytestmark = pytest.mark.timeout(90)


_clients: list[openai.OpenAI] = []


def client_for(server, api_key: str = "EMPTY") -> openai.OpenAI:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=api_key, max_retries=0)
    _clients.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_sdk_clients():
    """Each SDK client holds a connection pool; close them so no socket is left to the collector."""
    yield
    while _clients:
        _clients.pop().close()


def test_chat_text(omni_server) -> None:
    reply = client_for(omni_server).chat.completions.create(
        model=OMNI_MODEL, messages=[{"role": "user", "content": "Hello"}], modalities=["text"], seed=1,
    )
    assert reply.choices[0].message.content.startswith("[vomni-sim]")
    assert reply.usage.completion_tokens > 0 and reply.choices[0].finish_reason == "stop"


def test_chat_text_and_audio(omni_server) -> None:
    reply = client_for(omni_server).chat.completions.create(
        model=OMNI_MODEL, messages=[{"role": "user", "content": "Hello"}], modalities=["text", "audio"],
        audio={"voice": "Chelsie", "format": "wav"},
    )
    message = reply.choices[0].message
    with wave.open(io.BytesIO(base64.b64decode(message.audio.data))) as w:
        assert w.getframerate() == 24000
    assert message.content and reply.choices[0].model_extra["audio_metadata"]["sample_rate_hz"] == 24000


def test_chat_streaming(omni_server) -> None:
    pieces, usage, modalities = [], None, set()
    for chunk in client_for(omni_server).chat.completions.create(
        model=OMNI_MODEL, messages=[{"role": "user", "content": "Stream"}], modalities=["text"], stream=True,
        stream_options={"include_usage": True}, max_tokens=8,
    ):
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            modalities.add(chunk.model_extra.get("modality"))
        usage = chunk.usage or usage
    assert "".join(pieces).startswith("[vomni-sim]")
    assert usage is not None and usage.completion_tokens == 8
    assert modalities == {"text"}


def test_chat_image_with_extra_body(image_server) -> None:
    reply = client_for(image_server).chat.completions.create(
        model=IMAGE_MODEL, messages=[{"role": "user", "content": "a watercolor fox"}],
        extra_body={"height": 64, "width": 96, "num_inference_steps": 8, "seed": 42},
    )
    # The SDK keeps list content as plain dicts (reference §3.4).
    url = reply.choices[0].message.content[0]["image_url"]["url"]
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.size == (96, 64)


def test_images_generate(image_server) -> None:
    result = client_for(image_server).images.generate(
        model=IMAGE_MODEL, prompt="a watercolor fox", size="64x64", n=2, response_format="b64_json",
        extra_body={"seed": 3, "num_inference_steps": 4},
    )
    assert len(result.data) == 2 and result.size == "64x64" and result.output_format == "png"
    assert Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json))).size == (64, 64)


def test_images_edit(edit_server) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (32, 32), (20, 20, 200)).save(picture, "PNG")
    result = client_for(edit_server).images.edit(
        model="Qwen/Qwen-Image-Edit", image=("in.png", picture.getvalue(), "image/png"), prompt="warmer",
        extra_body={"seed": 1},
    )
    assert Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json))).size == (32, 32)


def test_sdk_error_classes(image_server, omni_server) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client_for(image_server).images.generate(model=IMAGE_MODEL, prompt="x", n=11)
    assert bad.value.body["param"] == "body.n"
    with pytest.raises(openai.NotFoundError):
        client_for(omni_server).chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


def test_sdk_authentication_error(start_sim) -> None:
    sim = start_sim(IMAGE_MODEL, api_key="k1")
    with pytest.raises(openai.AuthenticationError):
        client_for(sim, api_key="wrong").models.list()
    assert [m.id for m in client_for(sim, api_key="k1").models.list()] == [IMAGE_MODEL]


def test_raw_chat_bodies_validate_as_sdk_types(omni_server) -> None:
    """Reference §9: text (and text+audio) bodies and every stream chunk parse as the SDK's own types."""
    import httpx
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    messages = [{"role": "user", "content": "hi"}]
    for modalities in (["text"], ["text", "audio"]):
        body = httpx.post(omni_server.url + "/v1/chat/completions",
                          json={"messages": messages, "modalities": modalities, "max_tokens": 3}).json()
        parsed = ChatCompletion.model_validate(body)
        assert parsed.choices[0].message.content
    raw = httpx.post(omni_server.url + "/v1/chat/completions", json={
        "messages": messages, "stream": True, "max_tokens": 3, "stream_options": {"include_usage": True},
    }).text
    payloads = [line[len("data: "):] for line in raw.split("\n\n") if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(p) for p in payloads[:-1]]
    assert chunks[-1].usage is not None and chunks[-1].choices == []

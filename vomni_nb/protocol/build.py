"""Build each request (path, JSON body or multipart fields) from validated parameters.

Every builder returns a :class:`RequestSpec` and the parameters recorded on the result: what the
server was sent, under its wire names, ``extra`` fields included (so a recipe can send them again),
plus ``prompt`` (and a chat's ``system``). Nothing here sends anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol.dataurl import encode_data_url
from vomni_nb.protocol.media import MediaFile, MediaSource, load_media
from vomni_nb.protocol.validate import (
    check_float,
    check_int,
    check_prompt,
    check_seed,
    format_size,
    image_output_format,
    speech_format,
)

__all__ = [
    "RequestSpec",
    "MediaFile",
    "MediaSource",
    "load_media",
    "encode_multipart",
    "build_image_request",
    "build_chat_image_request",
    "build_edit_request",
    "build_chat_request",
    "build_speech_request",
    "build_video_request",
    "build_voice_upload",
    "reference_audio",
]

FileField = tuple[str, tuple[str, bytes, str]]


@dataclasses.dataclass(frozen=True)
class RequestSpec:
    """One HTTP request, transport-neutral. ``stream``: read the body incrementally."""

    method: str
    path: str
    json: Any = None
    content: bytes | None = None  # a pre-encoded body (multipart forms)
    content_type: str | None = None
    params: Mapping[str, Any] | None = None
    stream: bool = False
    retryable: bool = True  # resending is safe when the server did no work (503/429/refused)


def encode_multipart(fields: Mapping[str, str], files: Sequence[FileField] = ()) -> tuple[bytes, str]:
    """multipart/form-data body and its Content-Type (also for forms without files, as the server expects)."""
    boundary = "vomni-" + os.urandom(12).hex()
    out: list[bytes] = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode())
        out.append(value.encode("utf-8") + b"\r\n")
    for name, (filename, data, mime) in files:
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"; filename="{_quote(filename)}"\r\n'
            f"Content-Type: {mime}\r\n\r\n".encode()
        )
        out.append(data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _form_request(path: str, fields: Mapping[str, str], files: Sequence[FileField] = ()) -> RequestSpec:
    content, content_type = encode_multipart(fields, files)
    return RequestSpec("POST", path, content=content, content_type=content_type)


def _form_fields(params: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, str]:
    """Form values are text: parameters as ``str()``, extra values that are not strings as JSON."""
    form = {key: str(value) for key, value in params.items()}
    form.update({key: value if isinstance(value, str) else json.dumps(value) for key, value in (extra or {}).items()})
    return form


def _file_field(name: str, item: MediaFile) -> FileField:
    return name, (item.filename, item.data, item.mime_type)


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _sampling_params(*, steps: int | None, guidance: float | None, negative: str | None, seed: int | None) -> dict[str, Any]:
    """The denoising settings images and videos share, validated; unset ones left out."""
    return _drop_none(
        {
            "num_inference_steps": check_int("steps", steps, 1, 200) if steps is not None else None,
            "guidance_scale": check_float("guidance", guidance, 0.0, 20.0) if guidance is not None else None,
            "negative_prompt": negative,
            "seed": check_seed(seed) if seed is not None else None,
        }
    )


def _diffusion_params(
    *, size: Any, n: int, steps: int | None, guidance: float | None, negative: str | None, seed: int | None
) -> dict[str, Any]:
    params = _drop_none({"size": format_size(size) if size is not None else None, "n": check_int("n", n, 1, 10)})
    params.update(_sampling_params(steps=steps, guidance=guidance, negative=negative, seed=seed))
    return params


def build_image_request(
    prompt: str,
    *,
    model: str | None = None,
    size: Any = None,
    n: int = 1,
    steps: int | None = None,
    guidance: float | None = None,
    negative: str | None = None,
    seed: int | None = None,
    output_format: str = "png",
    extra: Mapping[str, Any] | None = None,
) -> tuple[RequestSpec, dict[str, Any]]:
    """``POST /v1/images/generations``."""
    params = {"prompt": check_prompt(prompt), "model": model, "output_format": image_output_format(output_format)}
    params.update(_diffusion_params(size=size, n=n, steps=steps, guidance=guidance, negative=negative, seed=seed))
    body = {**_drop_none(params), "response_format": "b64_json", **(extra or {})}
    return RequestSpec("POST", "/v1/images/generations", json=body), {**_drop_none(params), **(extra or {})}


def build_chat_image_request(
    prompt: str,
    *,
    model: str | None = None,
    size: Any = None,
    n: int = 1,
    steps: int | None = None,
    guidance: float | None = None,
    negative: str | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[RequestSpec, dict[str, Any]]:
    """An image through ``POST /v1/chat/completions``: diffusion keys at top level; always PNG."""
    check_prompt(prompt)
    diffusion = _diffusion_params(size=size, n=n, steps=steps, guidance=guidance, negative=negative, seed=seed)
    count = diffusion.pop("n")
    body: dict[str, Any] = _drop_none({"model": model, "messages": [{"role": "user", "content": prompt}]})
    body.update(diffusion)
    body["num_outputs_per_prompt"] = count
    body.update(extra or {})
    params = {"prompt": prompt, "via": "chat", "n": count, "output_format": "png", **_drop_none({"model": model}),
              **diffusion, **(extra or {})}
    return RequestSpec("POST", "/v1/chat/completions", json=body), params


def build_edit_request(
    prompt: str,
    images: Sequence[MediaSource],
    *,
    model: str | None = None,
    size: Any = None,
    n: int = 1,
    steps: int | None = None,
    guidance: float | None = None,
    negative: str | None = None,
    seed: int | None = None,
    output_format: str = "png",
    extra: Mapping[str, Any] | None = None,
) -> tuple[RequestSpec, dict[str, Any]]:
    """``POST /v1/images/edits`` (multipart); ``size="auto"`` keeps the first input's size."""
    check_prompt(prompt)
    if not images:
        raise InvalidRequestError("edit needs at least one input image.")
    media = [load_media(image, "image/png") for image in images]
    edit_size = "auto" if size in (None, "auto") else size
    diffusion = _diffusion_params(
        size=None if edit_size == "auto" else edit_size, n=n, steps=steps, guidance=guidance, negative=negative, seed=seed
    )
    params = {"prompt": prompt, "output_format": image_output_format(output_format), **_drop_none({"model": model})}
    params.update(diffusion)
    params.setdefault("size", "auto")
    files = [_file_field("image", item) for item in media]
    return _form_request("/v1/images/edits", _form_fields(params, extra), files), {**params, **(extra or {})}


def _sources(value: MediaSource | Sequence[MediaSource] | None) -> list[MediaSource]:
    """One source or several: ``images="cat.png"`` is one path, not seven one-letter paths."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, bytearray, os.PathLike)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def _user_content(prompt: str, images: Sequence[MediaSource], audio: Sequence[MediaSource]) -> Any:
    images, audio = _sources(images), _sources(audio)
    if not images and not audio:
        return prompt
    parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    for image in images:
        item = load_media(image, "image/png")
        parts.append({"type": "image_url", "image_url": {"url": encode_data_url(item.data, item.mime_type)}})
    for clip in audio:
        item = load_media(clip, "audio/wav")
        parts.append({"type": "audio_url", "audio_url": {"url": encode_data_url(item.data, item.mime_type)}})
    return parts


def build_chat_request(
    prompt: str | Sequence[Mapping[str, Any]],
    *,
    model: str | None = None,
    system: str | None = None,
    images: Sequence[MediaSource] = (),
    audio: Sequence[MediaSource] = (),
    modalities: Sequence[str] | None = None,
    voice: str | None = None,
    audio_format: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    stream: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> tuple[RequestSpec, dict[str, Any]]:
    """``POST /v1/chat/completions``: a prompt string (plus images/audio) or a full message list."""
    if isinstance(prompt, str):
        check_prompt(prompt)
        messages: list[Any] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": _user_content(prompt, images, audio)})
    else:
        messages = [dict(message) for message in prompt]
        if not messages:
            raise InvalidRequestError("messages is empty: give a prompt or at least one message.")
        if system:
            messages.insert(0, {"role": "system", "content": system})
    if modalities is not None:
        modalities = modalities.split(",") if isinstance(modalities, str) else list(modalities)
        unknown = [m for m in modalities if m not in ("text", "audio", "image")]
        if unknown or not modalities:
            raise InvalidRequestError(f"modalities must be a non-empty list of text, audio, image; got {modalities!r}.")
    if audio_format is not None:
        audio_format = speech_format(audio_format, streaming=False)
    if temperature is not None:
        check_float("temperature", temperature, 0.0, 2.0)
    if max_tokens is not None:
        check_int("max_tokens", max_tokens, 1, 1_000_000)
    body: dict[str, Any] = _drop_none(
        {
            "model": model,
            "messages": messages,
            "modalities": modalities,
            "voice": voice,
            "audio": {"format": audio_format} if audio_format else None,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": check_seed(seed) if seed is not None else None,
        }
    )
    if stream:
        body["stream"] = True
    body.update(extra or {})
    params = {key: value for key, value in body.items() if key not in ("messages", "stream")}
    params["prompt"] = prompt if isinstance(prompt, str) else messages[-1].get("content")
    if system:
        params["system"] = system
    return RequestSpec("POST", "/v1/chat/completions", json=body, stream=stream), params


def build_speech_request(
    text: str,
    *,
    model: str | None = None,
    voice: str | None = None,
    response_format: str = "wav",
    speed: float | None = None,
    instructions: str | None = None,
    language: str | None = None,
    sample_rate: int | None = None,
    seed: int | None = None,
    ref_audio: MediaSource | None = None,
    ref_text: str | None = None,
    stream_mode: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[RequestSpec, dict[str, Any]]:
    """``POST /v1/audio/speech``; ``stream_mode`` None (whole file), ``"audio"`` (raw bytes) or ``"sse"``.

    ``ref_audio`` (a voice to clone: bytes, a path, a result, or an http/https/file/data URL) is sent
    as a URL; the recorded parameters keep a URL given as one, not inline audio (see :func:`reference_audio`).
    """
    check_prompt(text, "text")
    if stream_mode not in (None, "audio", "sse"):
        raise InvalidRequestError(f"stream mode must be 'audio' or 'sse'; got {stream_mode!r}.")
    fmt = speech_format(response_format, streaming=stream_mode is not None)
    if speed is not None:
        check_float("speed", speed, 0.25, 4.0)
    if sample_rate is not None:
        check_int("sample_rate", sample_rate, 1, 384_000)
    params = _drop_none(
        {
            "model": model,
            "voice": voice,
            "response_format": fmt,
            "speed": speed,
            "instructions": instructions,
            "language": language,
            "sample_rate": sample_rate,
            "seed": check_seed(seed) if seed is not None else None,
            "ref_text": ref_text,
        }
    )
    clone = reference_audio(ref_audio) if ref_audio is not None else None
    body: dict[str, Any] = {"input": text, **params, **({"ref_audio": clone} if clone else {})}
    if clone and not clone.startswith("data:"):
        params["ref_audio"] = clone  # a URL can be sent again; inline audio stays out of the record
    if stream_mode is not None:
        body["stream_format"] = stream_mode
        body["stream"] = stream_mode == "sse"
    body.update(extra or {})
    recorded = {"input": text, **params, **(extra or {})}
    return RequestSpec("POST", "/v1/audio/speech", json=body, stream=stream_mode is not None), recorded


_AUDIO_URL_SCHEMES = ("http://", "https://", "file://", "data:")


def reference_audio(source: MediaSource) -> str:
    """A voice sample as the speech route takes it: a URL as given, anything else as a ``data:`` URL."""
    if isinstance(source, str) and source.startswith(_AUDIO_URL_SCHEMES):
        return source
    item = load_media(source, "audio/wav")
    if not item.mime_type.startswith("audio/"):
        raise InvalidRequestError(f"ref_audio must be audio (a WAV, MP3, FLAC ... file); got {item.mime_type}.")
    return encode_data_url(item.data, item.mime_type)


def build_video_request(
    prompt: str,
    *,
    model: str | None = None,
    size: Any = None,
    seconds: int | str | None = None,
    fps: float | None = None,
    num_frames: int | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    negative: str | None = None,
    seed: int | None = None,
    image: MediaSource | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[RequestSpec, dict[str, Any]]:
    """``POST /v1/videos`` (multipart) creating an async job."""
    params = _drop_none(
        {
            "prompt": check_prompt(prompt),
            "model": model,
            "size": format_size(size) if size is not None else None,
            "seconds": str(check_int("seconds", _whole(seconds), 1, 600)) if seconds is not None else None,
            "fps": check_float("fps", fps, 1, 240) if fps is not None else None,
            "num_frames": check_int("num_frames", num_frames, 1, 10_000) if num_frames is not None else None,
        }
    )
    params.update(_sampling_params(steps=steps, guidance=guidance, negative=negative, seed=seed))
    files = [_file_field("input_reference", load_media(image, "image/png"))] if image is not None else []
    return _form_request("/v1/videos", _form_fields(params, extra), files), {**params, **(extra or {})}


def _whole(value: Any) -> Any:
    """A number given as digits (the wire's ``seconds`` is text, so a recorded one is) is that number."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


def build_voice_upload(
    name: str,
    audio: MediaSource,
    *,
    consent: str,
    ref_text: str | None = None,
    speaker_description: str | None = None,
) -> RequestSpec:
    """``POST /v1/audio/voices`` (multipart): a named voice from a sample, with the speaker's consent."""
    check_prompt(name, "voice name")
    if not isinstance(consent, str) or not consent.strip():
        raise InvalidRequestError("consent is required: say how the speaker agreed to have their voice used.")
    item = load_media(audio, "audio/wav")
    form = _drop_none({"name": name, "consent": consent, "ref_text": ref_text, "speaker_description": speaker_description})
    return _form_request("/v1/audio/voices", form, [_file_field("audio_sample", item)])

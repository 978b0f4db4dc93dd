"""The server's own endpoints as plans: models, health, version, and named voices.

Written once for both clients (see :mod:`vomni_nb._plans` for how a plan becomes a method).
"""

from __future__ import annotations

import urllib.parse
import warnings
from typing import Any

from vomni_nb import _advice
from vomni_nb._core import ClientCore, Plan
from vomni_nb.errors import ResponseFormatError
from vomni_nb.protocol import build as B
from vomni_nb.protocol.capabilities import tts_variant
from vomni_nb.protocol.media import MediaSource
from vomni_nb.protocol.parse import load_json, parse_models

__all__ = ["models", "health", "version", "list_voices", "upload_voice", "delete_voice"]


def _get_json(core: ClientCore, path: str) -> Plan[Any]:
    reply = yield from core.call(B.RequestSpec("GET", path))
    return load_json(reply.content)


def models(core: ClientCore, /) -> Plan[list[str]]:
    """The model names the server serves."""
    reply = yield from core.call(B.RequestSpec("GET", "/v1/models"))
    served = parse_models(reply.content)
    core.learn_served_models(served)
    return served


def health(core: ClientCore, /) -> Plan[dict[str, Any]]:
    """``/health`` as a dict with ``ok``; an unhealthy (503) server is an answer here, not an error."""
    reply = yield from core.call(B.RequestSpec("GET", "/health", retryable=False), raise_for_status=False)
    if reply.status_code not in (200, 503):
        raise core.status_error(reply, B.RequestSpec("GET", "/health"))
    try:
        body = load_json(reply.content, "health answer") if reply.content else {}
    except ResponseFormatError:
        body = {}
    body = dict(body) if isinstance(body, dict) else {}
    body.setdefault("status", "healthy" if reply.status_code == 200 else "unhealthy")
    body["ok"] = reply.status_code == 200
    return body


def version(core: ClientCore, /) -> Plan[str]:
    """The server's version."""
    body = yield from _get_json(core, "/version")
    if not isinstance(body, dict) or not isinstance(body.get("version"), str):
        raise ResponseFormatError(f"/version answered without a version: {str(body)[:80]}")
    return str(body["version"])


def list_voices(core: ClientCore, /) -> Plan[dict[str, Any]]:
    """Built-in (``voices``) and uploaded (``uploaded_voices``) voices."""
    body = yield from _get_json(core, "/v1/audio/voices")
    if not isinstance(body, dict) or not isinstance(body.get("voices"), list):
        raise ResponseFormatError(f"The voice list has no 'voices': {str(body)[:80]}")
    body.setdefault("uploaded_voices", [])
    return body


def upload_voice(core: ClientCore, /, name: str, audio: MediaSource, *, consent: str, ref_text: str | None = None,
                 speaker_description: str | None = None) -> Plan[dict[str, Any]]:
    """Upload a voice sample under ``name``; ``consent`` says how the speaker agreed to its use.

    Uploaded voices are spoken by Base checkpoints (such as Qwen/Qwen3-TTS-12Hz-1.7B-Base). The server
    stores a voice whatever it runs, so an upload to a CustomVoice or VoiceDesign server succeeds but
    warns (UserWarning) that this server cannot speak with it.
    """
    spec = B.build_voice_upload(name, audio, consent=consent, ref_text=ref_text,
                                speaker_description=speaker_description)
    yield from core.ensure_recorded_model()
    reply = yield from core.call(spec)
    body = load_json(reply.content, "voice upload answer")
    voice = body.get("voice") if isinstance(body, dict) else None
    if not isinstance(voice, dict):
        raise ResponseFormatError(f"The voice upload answer has no 'voice': {str(body)[:80]}")
    model = core.recorded_model
    if tts_variant(model) in ("CustomVoice", "VoiceDesign"):
        warnings.warn(_advice.upload_on_custom_voice(str(model), name), UserWarning, stacklevel=2)
    return voice


def delete_voice(core: ClientCore, /, name: str) -> Plan[dict[str, Any]]:
    """Delete an uploaded voice."""
    path = f"/v1/audio/voices/{urllib.parse.quote(name, safe='')}"
    reply = yield from core.call(B.RequestSpec("DELETE", path, retryable=False))
    body = load_json(reply.content, "voice delete answer")
    return body if isinstance(body, dict) else {}

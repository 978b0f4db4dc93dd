"""Speakers: the built-in ones a TTS checkpoint ships, and voices uploaded at runtime (reference §3.10).

Uploads are kept under ``SimConfig.voices_dir`` (one JSON record plus the sample per voice) and survive
restarts, like the real server's ``SPEAKER_SAMPLES_DIR``. The sim cannot clone a voice; it keeps a pitch
measured from the sample so an uploaded voice sounds like itself and unlike the others.

A record on disk is data, never a path to follow: the files of a voice are the record file it was read
from (found by listing the directory) and the sample beside it with the same stem. The directory is
private (0700), files are written 0600, and symbolic links are neither read nor written.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from vomni_nb.sim import storage, vlog
from vomni_nb.sim.config import SimConfig
from vomni_nb.sim.families import Family
from vomni_nb.sim.inputs import AudioTooLong, decode_audio
from vomni_nb.sim.limits import LimitExceeded, Limits

__all__ = [
    "router",
    "VoiceStore",
    "store_of",
    "builtin_speakers",
    "tts_variant",
    "expected_embedding_dim",
    "DEFAULT_VOICE",
    "pitch_of",
    "check_voice_fields",
    "decode_sample",
    "SampleTooShort",
]

router = APIRouter()

# Qwen3-TTS CustomVoice's talker_config.spk_id, in config order (the first is the default speaker).
QWEN3_TTS_SPEAKERS = ("serena", "vivian", "uncle_fu", "ryan", "aiden", "ono_anna", "sohee", "eric", "dylan")
DEFAULT_VOICE = "default"  # the placeholder name every speech server accepts and lists
MAX_SAMPLE_BYTES = 10 * 1024 * 1024
MIN_SAMPLE_S, MAX_SAMPLE_S = 1.0, 30.0
MAX_EMBEDDING_LEN = 4096
ALLOWED_MIME = (
    "audio/mpeg", "audio/wav", "audio/x-wav", "audio/ogg", "audio/aac", "audio/flac", "audio/webm", "audio/mp4",
)
MIME_BY_SUFFIX = {
    ".wav": "audio/wav", ".mp3": "audio/mpeg", ".mpeg": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg",
    ".aac": "audio/aac", ".webm": "audio/webm", ".mp4": "audio/mp4",
}


def tts_variant(model: str) -> str | None:
    """CustomVoice | VoiceDesign | Base, read from the checkpoint name's last component as vLLM-Omni does."""
    last = re.split(r"[\\/]+", model.rstrip("/\\"))[-1].lower()
    match = re.search(r"(?:^|[-_.])(custom[-_.]?voice|voice[-_.]?design|base)$", last)
    if match is None:
        return None
    return {"customvoice": "CustomVoice", "voicedesign": "VoiceDesign", "base": "Base"}[re.sub(r"[-_.]", "", match.group(1))]


def builtin_speakers(config: SimConfig) -> tuple[str, ...]:
    """Only Qwen3-TTS CustomVoice checkpoints ship named speakers."""
    if config.family is Family.TTS and tts_variant(config.model) in (None, "CustomVoice"):
        return QWEN3_TTS_SPEAKERS
    return ()


def expected_embedding_dim(model: str) -> int:
    return 1024 if "0.6b" in model.lower() else 2048


def _safe_name(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.\-]", "_", Path(text).name)[:255] or "file"


def pitch_of(samples: np.ndarray, rate: int) -> int:
    """An espeak pitch (0-99) from the sample's zero-crossing rate: low voices low, high voices high."""
    if samples.size < 2:
        return 50
    signs = np.signbit(samples - samples.mean())
    crossings_per_s = np.count_nonzero(signs[1:] != signs[:-1]) * rate / samples.size / 2
    return int(max(0, min(99, 20 + 30 * math.log2(max(crossings_per_s, 50.0) / 100.0))))


RECORD_SUFFIX = ".voice.json"


class VoiceStore:
    """Uploaded voices, persisted as ``<name>_<consent>_<ts>.voice.json`` (+ the sample) in one directory."""

    def __init__(self, directory: Path, model: str, limits: Limits | None = None) -> None:
        self.directory = directory
        self.model = model
        self.limits = limits or Limits()
        self.voices: dict[str, dict[str, Any]] = {}
        self.record_files: dict[str, Path] = {}  # where each voice's record was read or written: never the record's word
        self.lock = asyncio.Lock()
        self._last_ts = 0
        storage.ensure_private_dir(directory)
        for record_path in sorted(directory.glob("*" + RECORD_SUFFIX)):
            try:
                record = json.loads(storage.read_private(record_path))
                name = validate_name(record["name"])
                check_voice_fields(name, str(record.get("consent", "")), self.limits)
            except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
                vlog.warning(f"Ignoring unreadable voice record {record_path.name}", where="serving_speech.py:260")
                continue
            if not isinstance(record.get("pitch"), int) or isinstance(record.get("pitch"), bool):
                record.pop("pitch", None)  # speech uses it as a number; a record is not trusted to hold one
            self.voices[name.lower()] = record
            self.record_files[name.lower()] = record_path

    def _timestamp(self) -> int:
        self._last_ts = max(int(time.time()), self._last_ts + 1)
        return self._last_ts

    def _files_of(self, lower: str) -> list[Path]:
        """The record file and the sample that shares its stem; both inside the directory by construction."""
        record_file = self.record_files.get(lower)
        if record_file is None:
            return []
        stem = record_file.name[: -len(RECORD_SUFFIX)]
        found = [record_file]
        sample_name = Path(str(self.voices.get(lower, {}).get("file_path") or "")).name
        if sample_name.startswith(stem + ".") and sample_name != record_file.name:
            found.append(self.directory / sample_name)
        return found

    def _check_cap(self, name: str) -> None:
        """The real server's cap on uploads (a re-upload replaces, so it does not count)."""
        if name.lower() not in self.voices and len(self.voices) >= self.limits.max_voices:
            raise LimitExceeded(
                f"Uploaded voice limit reached ({self.limits.max_voices}). Delete an existing voice before "
                "registering a new one, or raise the cap with --max-voices."
            )

    def _evict(self, lower: str) -> None:
        files = self._files_of(lower)
        self.voices.pop(lower, None)
        self.record_files.pop(lower, None)
        for path in files:
            path.unlink(missing_ok=True)  # unlink never follows a symbolic link

    def _save(self, record: dict[str, Any], payload: bytes, suffix: str) -> None:
        stem = f"{_safe_name(record['name'])}_{_safe_name(record['consent'])}_{record['created_at']}"
        file_path = self.directory / f"{stem}{suffix}"
        record_path = self.directory / f"{stem}{RECORD_SUFFIX}"
        try:
            storage.write_private(file_path, payload)
            record.update(file_path=str(file_path))
            storage.write_private(record_path, json.dumps(record).encode())
        except OSError as exc:
            file_path.unlink(missing_ok=True)
            raise ValueError(f"Failed to save voice file {file_path.name}: {exc.strerror or exc}") from exc
        self.voices[record["name"].lower()] = record
        self.record_files[record["name"].lower()] = record_path

    def add_sample(
        self, name: str, consent: str, filename: str, mime_type: str, content: bytes,
        ref_text: str | None, speaker_description: str | None, reserved: tuple[str, ...],
    ) -> dict[str, Any]:
        check_registration(name, reserved)
        check_voice_fields(name, consent, self.limits)
        self._check_cap(name)
        samples, rate = decode_sample(content)
        self._evict(name.lower())
        record: dict[str, Any] = {
            "name": name, "consent": consent, "created_at": self._timestamp(), "mime_type": mime_type,
            "file_size": len(content), "sample_rate": rate, "embedding_source": "audio", "embedding_dim": None,
            "pitch": pitch_of(samples, rate),
        }
        if ref_text:
            record["ref_text"] = ref_text
        if speaker_description:
            record["speaker_description"] = speaker_description
        suffix = Path(filename or "").suffix
        self._save(record, content, "." + _safe_name(suffix[1:]) if len(suffix) > 1 else ".wav")
        vlog.info(f"Uploaded new voice '{name}' with consent ID '{consent}'", where="serving_speech.py:998")
        result = {k: record[k] for k in ("name", "consent", "created_at", "mime_type", "file_size")}
        for key in ("ref_text", "speaker_description"):
            if record.get(key):
                result[key] = record[key]
        return result

    def add_embedding(
        self, name: str, consent: str, embedding_json: str, reserved: tuple[str, ...], *, check_dim: bool = True
    ) -> dict[str, Any]:
        check_voice_fields(name, consent, self.limits)
        try:
            embedding = json.loads(embedding_json)
        except (json.JSONDecodeError, TypeError, RecursionError) as exc:
            raise ValueError(f"'speaker_embedding' must be valid JSON: {exc}") from exc
        if not isinstance(embedding, list) or not embedding:
            raise ValueError("'speaker_embedding' must be a non-empty list of numbers")
        if len(embedding) > MAX_EMBEDDING_LEN:
            raise ValueError(f"'speaker_embedding' exceeds maximum length ({MAX_EMBEDDING_LEN} elements)")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in embedding):
            raise ValueError("'speaker_embedding' must contain only numeric values")
        if not all(math.isfinite(x) if isinstance(x, float) else abs(x) < 2**1023 for x in embedding):
            raise ValueError("'speaker_embedding' values must be finite (no NaN or Inf)")
        expected = expected_embedding_dim(self.model)
        if check_dim and len(embedding) != expected:
            raise ValueError(
                f"speaker_embedding has {len(embedding)} dimensions; expected {expected} for the loaded Qwen3-TTS model"
            )
        check_registration(name, reserved)
        self._check_cap(name)
        self._evict(name.lower())
        record: dict[str, Any] = {
            "name": name, "consent": consent, "created_at": self._timestamp(),
            "mime_type": "application/x-safetensors", "embedding_source": "direct", "embedding_dim": len(embedding),
            "pitch": _embedding_pitch(embedding),
        }
        payload = json.dumps(embedding).encode()
        record["file_size"] = len(payload)
        self._save(record, payload, ".embedding.json")
        vlog.info(f"Uploaded voice '{name}' from speaker embedding ({len(embedding)}-dim)", where="serving_speech.py:1088")
        return {k: record[k] for k in ("name", "consent", "created_at", "embedding_source", "embedding_dim")}

    def delete(self, name: str) -> bool:
        lower = name.lower()
        if lower not in self.voices:
            vlog.warning(f"Voice '{name}' not found", where="serving_speech.py:1112")
            return False
        self._evict(lower)
        vlog.info(f"Deleted voice '{name}'", where="serving_speech.py:1127")
        return True

    def listing(self) -> list[dict[str, Any]]:
        entries = []
        for lower, info in self.voices.items():
            entry = {
                "name": info.get("name", lower),
                "consent": info.get("consent", ""),
                "created_at": info.get("created_at", 0),
                "file_size": info.get("file_size", 0),
                "mime_type": info.get("mime_type", ""),
                "embedding_source": info.get("embedding_source", "audio"),
                "embedding_dim": info.get("embedding_dim"),
            }
            for key in ("ref_text", "speaker_description"):
                if info.get(key):
                    entry[key] = info[key]
            entries.append(entry)
        return entries


def _embedding_pitch(embedding: list[Any]) -> int:
    """A stable pitch from an embedding's values (finite values can still sum to infinity)."""
    total = sum(embedding)
    if isinstance(total, float) and not math.isfinite(total):
        total = 0.0
    return int(abs(total) * 997) % 80 + 10


class SampleTooShort(ValueError):
    """A reference clip under the protocol's 1 s."""


def decode_sample(content: bytes) -> tuple[np.ndarray, int]:
    """A voice sample's samples, decoded only up to the 30 s the protocol allows; 1-30 s or ValueError."""
    try:
        samples, rate = decode_audio(content, MAX_SAMPLE_S)
    except AudioTooLong:
        raise
    except ValueError as exc:
        raise ValueError(f"Could not decode audio file: {exc}") from exc
    duration = samples.size / rate
    if duration < MIN_SAMPLE_S:
        raise SampleTooShort(
            f"Reference audio too short ({duration:.1f}s). At least {MIN_SAMPLE_S:.0f}s of clear speech is required."
        )
    return samples, rate


def check_voice_fields(name: str, consent: str, limits: Limits) -> None:
    """Name and consent become a file name: bounded before anything is read, written or evicted."""
    for label, value in (("Voice name", name), ("Consent ID", consent)):
        if len(value) > limits.max_voice_name_chars:
            raise LimitExceeded(
                f"{label} is {len(value)} characters long; vomni-sim accepts at most {limits.max_voice_name_chars} "
                "(--max-voice-name-chars)."
            )


def check_registration(name: str, reserved: tuple[str, ...]) -> None:
    if name.lower() in reserved:
        raise ValueError(f"Voice name '{name}' is reserved by a built-in speaker of this model; choose a different name.")


def validate_name(name: str) -> str:
    trimmed = (name or "").strip()
    if not trimmed or trimmed in (".", "..") or any(c in trimmed for c in "/\\\x00"):
        raise ValueError(f"Invalid voice name {name!r}: must be non-empty, no path separators or NUL")
    return trimmed


def store_of(request: Request) -> VoiceStore:
    app = request.app
    store = getattr(app.state, "sim_voices", None)
    if store is None:
        config: SimConfig = app.state.sim
        store = VoiceStore(Path(config.voices_dir).expanduser(), config.model, config.limits)
        app.state.sim_voices = store
    return store


def speech_error(message: str, code: int = 400, err_type: str | None = None) -> JSONResponse:
    """The voices routes' errors: ErrorResponse object form, type BadRequestError unless told."""
    body = {"error": {"message": message, "type": err_type or "BadRequestError", "param": None, "code": code}}
    return JSONResponse(body, status_code=code)


@router.get("/v1/audio/voices")
async def list_voices(request: Request) -> JSONResponse:
    config: SimConfig = request.app.state.sim
    store = store_of(request)
    names = sorted(set(builtin_speakers(config)) | set(store.voices) | {DEFAULT_VOICE})
    return JSONResponse({"voices": names, "uploaded_voices": store.listing()})


@router.post("/v1/audio/voices")
async def upload_voice(
    request: Request,
    audio_sample: UploadFile | None = File(None),
    speaker_embedding: str | None = Form(None),
    consent: str = Form(...),
    name: str = Form(...),
    ref_text: str | None = Form(None),
    speaker_description: str | None = Form(None),
) -> JSONResponse:
    config: SimConfig = request.app.state.sim
    store = store_of(request)
    reserved = builtin_speakers(config)
    try:
        if speaker_embedding is not None and audio_sample is not None:
            return speech_error("'audio_sample' and 'speaker_embedding' are mutually exclusive")
        if speaker_embedding is not None:
            clean = validate_name(name)
            check_voice_fields(clean, consent, store.limits)
            async with store.lock:
                # Only a TTS adapter knows its embedding size; other models take any length.
                result = store.add_embedding(clean, consent, speaker_embedding, reserved,
                                             check_dim=config.family is Family.TTS)
        elif audio_sample is not None:
            clean = validate_name(name)
            check_voice_fields(clean, consent, store.limits)
            ref = (ref_text or "").strip() or None
            description = (speaker_description or "").strip() or None
            size = audio_sample.size
            if size is not None and size > MAX_SAMPLE_BYTES:  # checked before the upload is read into memory
                raise ValueError(f"File size exceeds maximum limit of 10MB. Got {size} bytes.")
            content = await audio_sample.read()
            if len(content) > MAX_SAMPLE_BYTES:
                raise ValueError(f"File size exceeds maximum limit of 10MB. Got {len(content)} bytes.")
            mime_type = audio_sample.content_type or "application/octet-stream"
            if mime_type == "application/octet-stream":
                mime_type = MIME_BY_SUFFIX.get(Path((audio_sample.filename or "").lower()).suffix, "audio/wav")
            if mime_type not in ALLOWED_MIME:
                allowed = "{" + ", ".join(repr(m) for m in ALLOWED_MIME) + "}"
                raise ValueError(f"Unsupported MIME type: {mime_type}. Allowed: {allowed}")
            async with store.lock:
                result = await asyncio.to_thread(
                    store.add_sample, clean, consent, audio_sample.filename or "", mime_type, content,
                    ref, description, reserved,
                )
        else:
            return speech_error("Either 'audio_sample' or 'speaker_embedding' must be provided")
    except ValueError as exc:
        return speech_error(str(exc))
    return JSONResponse({"success": True, "voice": result})


@router.delete("/v1/audio/voices/{name}")
async def delete_voice(name: str, request: Request) -> JSONResponse:
    store = store_of(request)
    async with store.lock:
        deleted = store.delete(name)
    if not deleted:
        return speech_error(f"Voice '{name}' not found", 404, "NotFoundError")
    return JSONResponse({"success": True, "message": f"Voice '{name}' deleted successfully"})

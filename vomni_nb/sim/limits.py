"""How much one client may ask of vomni-sim: every limit, its flag and its default, in one table.

vomni-sim runs on laptops, Binder and shared lab machines. Rule 1: no single request, and no handful of
slow or abandoned connections, may take gigabytes of memory, minutes of CPU or the whole log. Rule 2:
every limit is a command-line flag with a safe default, so a user who needs more can say so. Rule 3: a
request over a limit gets a 4xx in vLLM's error shape that names the limit and its flag.

The real server's own ``--max-generated-image-size`` stays where it was (``SimConfig``); the limits here
exist only because a CPU simulator must not pretend to have a GPU's memory.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

__all__ = ["Limits", "LIMIT_FLAGS", "add_limit_flags", "limits_from_args", "LimitExceeded"]

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Limits:
    """The defaults are sized for a laptop: each request stays within a few hundred MB."""

    # HTTP
    max_body_size: int = 32 * MiB  # any request body (multipart uploads included)
    max_json_body_size: int = 16 * MiB  # a JSON body (it is parsed whole)
    max_json_values: int = 262_144  # commas + objects + arrays in a JSON body: bounds what parsing builds
    max_body_memory: int = 256 * MiB  # request bodies held by all requests at once
    header_timeout: float = 10.0  # seconds from a connection's first byte to complete request headers
    body_timeout: float = 60.0  # seconds from complete headers to the end of the body
    max_connections: int = 256  # beyond it, the oldest connection still waiting on its client is dropped
    log_repeat_limit: int = 50  # lines of one kind per 10 s (10x that in all); the rest are counted
    # Work
    max_concurrent_work: int = 2  # rendering / decoding / synthesis threads at once; the rest queue
    # Images (the area limit is vLLM's own --max-generated-image-size)
    max_side: int = 8192  # each side of a generated, edited or chat image, an input image, a video frame
    max_output_pixels: int = 64 * MiB  # all images one request produces (n x width x height)
    max_input_image_pixels: int = 4096 * 4096  # a decoded input image (checked from its header)
    max_outputs_per_request: int = 10  # edits n, chat num_outputs_per_prompt, omni chat n
    # Video
    max_video_pixels: int = 1920 * 1088  # one frame (width x height)
    max_video_pixel_frames: int = 1280 * 720 * 241  # width x height x frames of one clip
    max_video_jobs: int = 8  # queued + running video jobs
    video_ttl: float = 3600.0  # seconds a finished job and its file are kept
    max_stored_videos: int = 100  # finished jobs kept; the oldest expire first
    # Speech
    max_speech_input_chars: int = 4096  # /v1/audio/speech input
    max_speech_seconds: float = 300.0  # audio one speech request produces
    max_voice_name_chars: int = 100  # a voice's name and consent id (they become a file name)
    max_voices: int = 100  # uploaded voices kept (each up to 10 MB on disk); the real server's cap is 1000


class LimitExceeded(ValueError):
    """A request asks for more than a limit allows; the message names the limit's flag."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


# (flag, field, type, help). The README's simulator table lists the same rows.
LIMIT_FLAGS: tuple[tuple[str, str, Any, str], ...] = (
    ("--max-body-size", "max_body_size", _positive_int, "bytes of any request body (413 while reading)"),
    ("--max-json-body-size", "max_json_body_size", _positive_int, "bytes of a JSON request body"),
    ("--max-json-values", "max_json_values", _positive_int, "commas, objects and arrays in a JSON body"),
    ("--max-body-memory", "max_body_memory", _positive_int, "bytes of request bodies held at once (503 beyond)"),
    ("--header-timeout", "header_timeout", _positive_float, "seconds to send complete request headers"),
    ("--body-timeout", "body_timeout", _positive_float, "seconds to send a request body after its headers"),
    ("--max-connections", "max_connections", _positive_int, "open connections; the oldest idle one goes first"),
    ("--log-repeat-limit", "log_repeat_limit", _positive_int, "log lines of one kind per 10 s"),
    ("--max-concurrent-work", "max_concurrent_work", _positive_int, "generations/decodes running at once"),
    ("--max-side", "max_side", _positive_int, "pixels on each side of any image or video frame"),
    ("--max-output-pixels", "max_output_pixels", _positive_int, "pixels of all images one request makes"),
    ("--max-input-image-pixels", "max_input_image_pixels", _positive_int, "pixels of a decoded input image"),
    ("--max-outputs-per-request", "max_outputs_per_request", _positive_int,
     "edits n, chat num_outputs_per_prompt, omni n"),
    ("--max-video-pixels", "max_video_pixels", _positive_int, "pixels of one video frame"),
    ("--max-video-pixel-frames", "max_video_pixel_frames", _positive_int, "width x height x frames of a clip"),
    ("--max-video-jobs", "max_video_jobs", _positive_int, "queued + running video jobs (429 beyond)"),
    ("--video-ttl", "video_ttl", _positive_float, "seconds a finished video job and its file are kept"),
    ("--max-stored-videos", "max_stored_videos", _positive_int, "finished video jobs kept"),
    ("--max-speech-input-chars", "max_speech_input_chars", _positive_int, "characters of speech input"),
    ("--max-speech-seconds", "max_speech_seconds", _positive_float, "seconds of audio per speech request"),
    ("--max-voice-name-chars", "max_voice_name_chars", _positive_int, "characters of a voice name or consent"),
    ("--max-voices", "max_voices", _positive_int, "uploaded voices kept"),
)


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("limits (vomni-sim only; see the README's Security section)")
    defaults = Limits()
    for flag, field, kind, text in LIMIT_FLAGS:
        default = getattr(defaults, field)
        metavar = "S" if kind is _positive_float else "N"
        group.add_argument(flag, dest=f"limit_{field}", type=kind, default=default, metavar=metavar,
                           help=f"{text} (default {default})")


def limits_from_args(args: argparse.Namespace) -> Limits:
    return Limits(**{field: getattr(args, f"limit_{field}") for _, field, _, _ in LIMIT_FLAGS})

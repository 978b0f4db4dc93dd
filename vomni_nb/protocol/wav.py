"""WAV reading and writing for 16-bit PCM, and joining independently encoded WAV chunks.

Streamed audio comes as many small WAV files (chat: each ``delta.content``) or as one header with
0xFFFFFFFF sizes followed by raw PCM (speech ``stream_format:"audio"``). Joining means decoding each
chunk to PCM and concatenating the PCM, never the bytes.
"""

from __future__ import annotations

import dataclasses
import struct

from vomni_nb.errors import ResponseFormatError
from vomni_nb.protocol.untrusted import reads_untrusted

__all__ = ["WavInfo", "parse_wav", "wav_header", "pcm_to_wav", "join_wav_chunks", "STREAMING_SIZE"]

STREAMING_SIZE = 0xFFFFFFFF
# Beyond these no audio is real; a header claiming them would only overflow what is built from it.
MAX_CHANNELS = 64
MAX_SAMPLE_RATE = 1_000_000


@dataclasses.dataclass(frozen=True)
class WavInfo:
    sample_rate: int
    channels: int
    bits_per_sample: int
    pcm: bytes

    @property
    def frames(self) -> int:
        width = self.channels * self.bits_per_sample // 8
        return len(self.pcm) // width if width else 0

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@reads_untrusted("audio")
def parse_wav(data: bytes) -> WavInfo:
    """Read a RIFF/WAVE file: format and PCM data. A 0xFFFFFFFF (streaming) data size means "to the end"."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ResponseFormatError("Expected a WAV file (RIFF/WAVE header), got something else.")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise ResponseFormatError("WAV file with a truncated fmt chunk.")
            audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            fmt = (audio_format, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise ResponseFormatError("WAV file whose data chunk comes before its fmt chunk.")
            end = len(data) if size == STREAMING_SIZE else min(len(data), body + size)
            _, channels, rate, bits = fmt
            if not 1 <= channels <= MAX_CHANNELS or bits not in (8, 16, 24, 32) or not 1 <= rate <= MAX_SAMPLE_RATE:
                raise ResponseFormatError(f"Unsupported WAV format: {channels} channels, {bits} bits, {rate} Hz.")
            return WavInfo(sample_rate=rate, channels=channels, bits_per_sample=bits, pcm=data[body:end])
        if size == STREAMING_SIZE:
            break
        offset = body + size + (size & 1)
    raise ResponseFormatError("WAV file without a data chunk.")


def wav_header(sample_rate: int, channels: int = 1, bits: int = 16, data_size: int | None = None) -> bytes:
    """A 44-byte PCM WAV header; ``data_size=None`` gives the 0xFFFFFFFF streaming header."""
    block = channels * bits // 8
    data_field = STREAMING_SIZE if data_size is None else data_size
    riff_field = STREAMING_SIZE if data_size is None else 36 + data_size
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", riff_field, b"WAVE", b"fmt ", 16, 1, channels, sample_rate,
        sample_rate * block, block, bits, b"data", data_field,
    )


def pcm_to_wav(pcm: bytes, sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    return wav_header(sample_rate, channels, bits, len(pcm)) + pcm


def join_wav_chunks(chunks: list[bytes]) -> WavInfo:
    """Decode each WAV chunk and concatenate the PCM; all chunks must share one format."""
    if not chunks:
        raise ResponseFormatError("No audio chunks to join.")
    infos = [parse_wav(chunk) for chunk in chunks]
    first = infos[0]
    for info in infos[1:]:
        if (info.sample_rate, info.channels, info.bits_per_sample) != (
            first.sample_rate, first.channels, first.bits_per_sample
        ):
            raise ResponseFormatError("Audio chunks with different formats cannot be joined.")
    return dataclasses.replace(first, pcm=b"".join(info.pcm for info in infos))

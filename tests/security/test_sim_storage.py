"""Issue 14 items 8 (video queue and expiry), 9 (voice records) and 10 (video storage), against real servers.

A planted file, a swapped symlink or a hostile name must never make the simulator delete or serve a file
outside its own.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.attacks import error_of, wav_bytes
from tests.support.sims import TTS_MODEL, VIDEO_MODEL

VOICES = "/v1/audio/voices"
BASE_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-Base"
VIDEOS = "/v1/videos"
SMALL = {"prompt": "a paper boat", "size": "64x48", "num_frames": "2", "seed": "1"}


def _wait_for(url: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = httpx.get(url).json()
        if job.get("status") in statuses:
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"{url} never reached {statuses}")


def test_planted_voice_record_cannot_delete_another_file(start_sim: Any, tmp_path: Path) -> None:
    voices, victim, secret = tmp_path / "speakers", tmp_path / "victim.txt", tmp_path / "secret.json"
    voices.mkdir()
    victim.write_text("precious")
    secret.write_text(json.dumps({"name": "leak", "consent": "c", "created_at": 1}))
    planted = {"name": "planted", "consent": "c", "created_at": 1, "file_size": 1, "pitch": "loud",
               "record_path": str(victim), "file_path": str(victim)}
    (voices / "planted_c_1.voice.json").write_text(json.dumps(planted))
    (voices / "linked_c_1.voice.json").symlink_to(secret)  # a record behind a link is not read at all
    sim = start_sim(BASE_MODEL, env={"VOMNI_SIM_VOICES_DIR": str(voices)})
    assert "leak" not in httpx.get(sim.url + VOICES).json()["voices"]
    spoken = httpx.post(sim.url + "/v1/audio/speech", json={"input": "hi", "voice": "planted"}, timeout=60)
    assert spoken.status_code == 200  # a record's fields are data too: a bad pitch is dropped, not used
    deleted = httpx.delete(sim.url + VOICES + "/planted")
    assert deleted.status_code == 200
    assert victim.read_text() == "precious" and secret.exists()
    assert not (voices / "planted_c_1.voice.json").exists()  # the record itself is what goes
    assert stat.S_IMODE(voices.stat().st_mode) == 0o700


def test_too_long_name_or_consent_is_a_400_before_anything_is_touched(start_sim: Any, tmp_path: Path) -> None:
    voices = tmp_path / "speakers"
    sim = start_sim(TTS_MODEL, env={"VOMNI_SIM_VOICES_DIR": str(voices)})
    sample = {"audio_sample": ("s.wav", wav_bytes(2.0), "audio/wav")}
    assert httpx.post(sim.url + VOICES, data={"name": "keep", "consent": "c"}, files=sample, timeout=60).status_code == 200
    files_before = sorted(p.name for p in voices.iterdir())
    for form in ({"name": "keep", "consent": "c" * 300}, {"name": "k" * 300, "consent": "c"}):
        response = httpx.post(sim.url + VOICES, data=form, files=sample, timeout=60)
        message = error_of(response, 400)["message"]
        assert message.endswith("characters long; vomni-sim accepts at most 100 (--max-voice-name-chars).")
        assert str(voices) not in message
    embedding = httpx.post(sim.url + VOICES, data={"name": "keep", "consent": "c" * 300,
                                                   "speaker_embedding": json.dumps([0.1] * 2048)})
    assert error_of(embedding, 400)["type"] == "BadRequestError"
    assert "keep" in httpx.get(sim.url + VOICES).json()["voices"]  # the existing voice was not evicted
    assert sorted(p.name for p in voices.iterdir()) == files_before
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in voices.iterdir())


def test_video_storage_is_private_and_gone_at_exit(start_sim: Any, tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    sim = start_sim(VIDEO_MODEL, env={"VOMNI_SIM_STORAGE": "", "TMPDIR": str(temp)})  # the default, in a known place
    job = httpx.post(sim.url + VIDEOS, data=SMALL).json()
    _wait_for(f"{sim.url}{VIDEOS}/{job['id']}", ("completed",))
    [directory] = list(temp.glob("vomni-sim-videos-*"))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    [video] = list(directory.iterdir())
    assert stat.S_IMODE(video.stat().st_mode) == 0o600 and video.name == f"{job['id']}.mp4"
    sim.stop()
    assert not directory.exists()


def test_a_swapped_symlink_is_never_served(start_sim: Any, tmp_path: Path) -> None:
    store, secret = tmp_path / "store", tmp_path / "secret.txt"
    store.mkdir(mode=0o777)
    os.chmod(store, 0o777)  # as if another user had made it world-writable
    secret.write_text("the owner's private data")
    sim = start_sim(VIDEO_MODEL, env={"VOMNI_SIM_STORAGE": str(store)})
    assert stat.S_IMODE(store.stat().st_mode) == 0o700  # tightened at start
    job = httpx.post(sim.url + VIDEOS, data=SMALL).json()
    _wait_for(f"{sim.url}{VIDEOS}/{job['id']}", ("completed",))
    stored = store / f"{job['id']}.mp4"
    stored.unlink()
    stored.symlink_to(secret)
    content = httpx.get(f"{sim.url}{VIDEOS}/{job['id']}/content")
    assert error_of(content, 404)["message"] == "Generated video file not found on disk"
    assert secret.read_text() == "the owner's private data"


def test_storage_that_is_a_symlink_stops_the_start(start_sim: Any, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "store").symlink_to(tmp_path / "elsewhere")
    sim = start_sim(VIDEO_MODEL, env={"VOMNI_SIM_STORAGE": str(tmp_path / "store")}, wait=False)
    assert sim.process.wait(60) == 1
    assert "vomni-sim cannot use its storage:" in sim.log() and "is not a directory (a symbolic link?)" in sim.log()


def test_video_jobs_are_bounded_and_expire(start_sim: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    sim = start_sim(VIDEO_MODEL, "--max-video-jobs", "2", "--video-ttl", "1", "--latency", "30",
                    env={"VOMNI_SIM_STORAGE": str(store)})
    waiting = [httpx.post(sim.url + VIDEOS, data=SMALL).json() for _ in range(2)]
    refused = httpx.post(sim.url + VIDEOS, data=SMALL)
    assert error_of(refused, 429)["message"] == (
        "2 video jobs are already queued or running (--max-video-jobs); wait for one to finish or delete one, then retry."
    )
    assert refused.headers["retry-after"] == "2"
    for job in waiting:
        assert httpx.delete(f"{sim.url}{VIDEOS}/{job['id']}", timeout=30).status_code == 200

    quick = start_sim(VIDEO_MODEL, "--video-ttl", "1", env={"VOMNI_SIM_STORAGE": str(store)})
    job = httpx.post(quick.url + VIDEOS, data=SMALL).json()
    done = _wait_for(f"{quick.url}{VIDEOS}/{job['id']}", ("completed",))
    assert done["expires_at"] == done["completed_at"] + 1
    assert (store / f"{job['id']}.mp4").exists()
    deadline = time.monotonic() + 30
    while httpx.get(f"{quick.url}{VIDEOS}/{job['id']}").status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(f"{quick.url}{VIDEOS}/{job['id']}").status_code == 404
    assert not (store / f"{job['id']}.mp4").exists()


def test_uploaded_voices_are_capped(start_sim: Any, tmp_path: Path) -> None:
    sim = start_sim(TTS_MODEL, "--max-voices", "1", env={"VOMNI_SIM_VOICES_DIR": str(tmp_path / "speakers")})
    sample = {"audio_sample": ("s.wav", wav_bytes(1.5), "audio/wav")}
    assert httpx.post(sim.url + VOICES, data={"name": "one", "consent": "c"}, files=sample, timeout=60).status_code == 200
    second = httpx.post(sim.url + VOICES, data={"name": "two", "consent": "c"}, files=sample, timeout=60)
    assert error_of(second, 400)["message"] == (
        "Uploaded voice limit reached (1). Delete an existing voice before registering a new one, or raise the cap "
        "with --max-voices."
    )
    again = httpx.post(sim.url + VOICES, data={"name": "ONE", "consent": "c"}, files=sample, timeout=60)
    assert again.status_code == 200  # a re-upload replaces the voice and does not count

"""Issue 14 items 2, 4 and 8: pixel bombs, decompression bombs and unbounded counts, against real servers.

Every refusal happens before anything large is allocated: the tests assert the 400 in 0.30.0's shape
and a bound on the server's peak RSS growth.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

import httpx
import pytest

from tests.support.attacks import PeakRss, error_of, zero_png
from tests.support.sims import EDIT_MODEL, IMAGE_MODEL, OMNI_MODEL, VIDEO_MODEL

CHAT = "/v1/chat/completions"
USER = [{"role": "user", "content": "a lighthouse"}]


def _png_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_video_pixel_bomb_is_refused_before_rendering(start_sim: Any) -> None:
    sim = start_sim(VIDEO_MODEL)
    sync = sim.url + "/v1/videos/sync"
    assert httpx.post(sync, data={"prompt": "warm", "size": "64x48", "num_frames": "2"}, timeout=60).status_code == 200
    with PeakRss(sim.process.pid) as rss:
        square = httpx.post(sync, data={"prompt": "p", "size": "8192x8192", "num_frames": "1"}, timeout=60)
        wide = httpx.post(sync, data={"prompt": "p", "width": str(2**62), "height": "2"}, timeout=60)
        long = httpx.post(sync, data={"prompt": "p", "size": "1280x720", "num_frames": "100000"}, timeout=60)
        endless = httpx.post(sim.url + "/v1/videos", data={"prompt": "p", "seconds": "9" * 400}, timeout=60)
    assert error_of(square, 400)["message"] == (
        "Video size 8192x8192 has 67108864 pixels per frame; vomni-sim renders at most 2088960 (--max-video-pixels)."
    )
    assert "(--max-side)" in error_of(wide, 400)["message"]
    assert error_of(long, 400)["message"].endswith("at most 241 frames at that size (--max-video-pixel-frames).")
    assert "(--max-video-pixel-frames)" in error_of(endless, 400)["message"]
    assert httpx.get(sim.url + "/v1/videos").json()["data"] == []  # nothing was queued
    assert rss.growth_mb < 20, f"refused video requests grew the server by {rss.growth_mb:.0f} MB"


def test_image_side_is_capped_as_well_as_the_area(start_sim: Any) -> None:
    sim = start_sim(IMAGE_MODEL)
    gen = sim.url + "/v1/images/generations"
    assert httpx.post(gen, json={"prompt": "warm", "size": "64x64"}, timeout=60).status_code == 200
    with PeakRss(sim.process.pid) as rss:
        line = httpx.post(gen, json={"prompt": "p", "size": "33177600x1"}, timeout=60)  # exactly the area limit
        many = httpx.post(gen, json={"prompt": "p", "size": "5760x5760", "n": 10}, timeout=60)
        zero = httpx.post(sim.url + CHAT, json={"messages": USER, "height": 0, "width": 512}, timeout=60)
        line_chat = httpx.post(sim.url + CHAT, json={"messages": USER, "size": "33177600x1"}, timeout=60)
    assert error_of(line, 400)["message"] == (
        "Requested image size 33177600x1 is larger than vomni-sim renders: at most 8192 pixels on a side (--max-side)."
    )
    assert error_of(many, 400)["message"].endswith("per request (--max-output-pixels).")
    assert error_of(zero, 400) == {"message": "height must be at least 1, got 0.", "type": "BadRequestError",
                                   "param": None, "code": 400}
    assert error_of(line_chat, 400)["message"].endswith("(--max-side).")
    assert rss.growth_mb < 20, f"refused image sizes grew the server by {rss.growth_mb:.0f} MB"


@pytest.mark.parametrize("route", ["edits", "chat"])
def test_decompression_bomb_is_refused_from_its_header(start_sim: Any, route: str) -> None:
    sim = start_sim(EDIT_MODEL)
    bomb = zero_png(9400, 9400)  # a few hundred KB; 265 MB of RGB once decoded

    def send(png: bytes) -> httpx.Response:
        if route == "edits":
            files = {"image": ("in.png", png, "image/png")}
            return httpx.post(sim.url + "/v1/images/edits", data={"prompt": "p", "size": "64x64"}, files=files,
                              timeout=60)
        parts = [{"type": "text", "text": "p"}, {"type": "image_url", "image_url": {"url": _png_url(png)}}]
        return httpx.post(sim.url + CHAT, json={"messages": [{"role": "user", "content": parts}], "size": "64x64"},
                          timeout=60)

    assert send(zero_png(64, 64)).status_code == 200
    with PeakRss(sim.process.pid) as rss:
        responses: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda: responses.append(send(bomb))) for _ in range(4)]  # 4 at once
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for response in responses:
        assert error_of(response, 400)["message"].endswith(
            "Input image is 9400x9400 = 88360000 pixels; vomni-sim decodes at most 16777216 "
            "(--max-input-image-pixels). Send a smaller image."
        )
    assert rss.growth_mb < 40, f"four {len(bomb)} byte PNG bombs grew the server by {rss.growth_mb:.0f} MB"


def test_counts_are_capped(start_sim: Any) -> None:
    edit_sim = start_sim(EDIT_MODEL)
    files = {"image": ("in.png", zero_png(64, 64), "image/png")}
    edits = httpx.post(edit_sim.url + "/v1/images/edits", data={"prompt": "p", "n": "40"}, files=files, timeout=60)
    assert error_of(edits, 400)["message"] == "n must be at most 10 on vomni-sim (--max-outputs-per-request), got 40."
    chat = httpx.post(edit_sim.url + CHAT, json={"messages": USER, "num_outputs_per_prompt": 40}, timeout=60)
    assert error_of(chat, 400)["message"] == (
        "num_outputs_per_prompt must be at most 10 on vomni-sim (--max-outputs-per-request), got 40."
    )
    omni_sim = start_sim(OMNI_MODEL)
    with PeakRss(omni_sim.process.pid) as rss:
        omni = httpx.post(omni_sim.url + CHAT, json={"messages": USER, "n": 100}, timeout=60)
    assert error_of(omni, 400) == {
        "message": "n must be at most 10 on vomni-sim (--max-outputs-per-request), got 100.",
        "type": "BadRequestError", "param": "n", "code": 400,
    }
    assert rss.growth_mb < 20


def test_image_chat_stops_rendering_when_the_client_leaves(start_sim: Any) -> None:
    sim = start_sim(IMAGE_MODEL)
    body = {"messages": USER, "size": "1024x1024", "num_outputs_per_prompt": 10}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(sim.url + CHAT, json=body, timeout=httpx.Timeout(30, read=1.0))  # leaves after 1 s
    log = sim.wait_for_log("Image chat stopped after", timeout=30)
    assert "aborted." in log  # the request was aborted like on the real server ...
    stopped = log[log.index("Image chat stopped after"):].split("\n", 1)[0]
    assert not stopped.startswith("Image chat stopped after 10 ")  # ... and the renderer did not run to the end

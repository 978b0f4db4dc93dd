"""Cross-cutting behaviour of vomni-sim (reference §1–3.2): auth, error shapes, info routes, faults, aborts."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time

import httpx
import pytest

from tests.support.sims import IMAGE_MODEL, OMNI_MODEL, TTS_MODEL

pytestmark = pytest.mark.timeout(60)
SMALL = {"prompt": "a lighthouse", "size": "32x32", "seed": 1}


def test_health_version_ping_load(image_server) -> None:
    assert httpx.get(image_server.url + "/health").json() == {"status": "healthy"}
    assert httpx.get(image_server.url + "/version").json() == {"version": "0.30.0"}
    assert httpx.get(image_server.url + "/ping").status_code == 200
    assert httpx.post(image_server.url + "/ping").status_code == 200
    assert httpx.get(image_server.url + "/load").json() == {"server_load": 0}


def test_models_keeps_the_openai_shape_and_says_simulated(image_server) -> None:
    body = httpx.get(image_server.url + "/v1/models").json()
    assert body["object"] == "list" and len(body["data"]) == 1
    card = body["data"][0]
    assert card["id"] == card["root"] == IMAGE_MODEL
    assert (card["object"], card["owned_by"], card["parent"], card["max_model_len"]) == ("model", "vllm", None, None)
    assert card["permission"][0]["object"] == "model_permission"
    assert card["simulated"] is True
    # vLLM builds the card per request: created is the request time, not the server start.
    before = int(time.time())
    again = httpx.get(image_server.url + "/v1/models").json()["data"][0]
    assert again["created"] >= before and again["permission"][0]["created"] == again["created"]
    assert again["permission"][0]["id"] != card["permission"][0]["id"]


def test_omni_models_have_a_context_length(omni_server) -> None:
    assert httpx.get(omni_server.url + "/v1/models").json()["data"][0]["max_model_len"] == 32768


def test_metrics_are_prometheus_text(image_server) -> None:
    reply = httpx.get(image_server.url + "/metrics")
    assert reply.headers["content-type"].startswith("text/plain")
    assert "# TYPE vllm:num_requests_running gauge" in reply.text
    assert 'vomni_sim_info{model_name="Tongyi-MAI/Z-Image-Turbo",family="image"' in reply.text


def test_unknown_path_and_wrong_method_use_fastapi_bodies(image_server) -> None:
    missing = httpx.get(image_server.url + "/v1/images/variations")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    wrong = httpx.get(image_server.url + "/v1/images/generations")
    assert (wrong.status_code, wrong.json()) == (405, {"detail": "Method Not Allowed"})


@pytest.mark.parametrize("path", ["/v1/images/generations", "/v1/chat/completions"])
def test_json_routes_refuse_other_content_types(image_server, path: str) -> None:
    reply = httpx.post(image_server.url + path, content=b"prompt=x", headers={"content-type": "text/plain"})
    assert reply.status_code == 400
    assert reply.json() == {
        "error": {
            "message": "1 validation error:\n  Unsupported Media Type: Only 'application/json' is allowed",
            "type": "Bad Request",
            "param": None,
            "code": 400,
        }
    }


def test_validation_errors_are_400_with_a_dotted_param(image_server) -> None:
    reply = httpx.post(image_server.url + "/v1/images/generations", json={"prompt": "x", "n": 11})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("Bad Request", "body.n", 400)
    assert error["message"].startswith("1 validation error:\n  {'type': 'less_than_equal', 'loc': 'body.n'")
    two = httpx.post(image_server.url + "/v1/images/generations", json={"n": 0}).json()["error"]
    assert two["message"].startswith("2 validation errors:\n")


def test_api_key_guards_only_v1_paths(start_sim) -> None:
    # vLLM's default CORS policy (any origin); vomni-sim's own default refuses origins (tests/security).
    sim = start_sim(IMAGE_MODEL, "--api-key", "other", "--allowed-origins", '["*"]', api_key="sekrit")
    unauthorized = httpx.get(sim.url + "/v1/models")
    assert (unauthorized.status_code, unauthorized.json()) == (401, {"error": "Unauthorized"})
    wrong = httpx.get(sim.url + "/v1/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    for key in ("sekrit", "other"):  # --api-key is repeatable
        assert httpx.get(sim.url + "/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    for open_path in ("/health", "/version", "/metrics", "/ping"):
        assert httpx.get(sim.url + open_path).status_code == 200
    assert httpx.get(sim.url + "/v2/anything").status_code == 401  # guarded even when unknown
    preflight = httpx.options(
        sim.url + "/v1/images/generations",
        headers={"Origin": "http://localhost:8888", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200  # OPTIONS is never checked
    assert preflight.headers["access-control-allow-origin"] == "*"
    # vLLM compares the scheme case-insensitively (authenticate.py verify_token).
    assert httpx.get(sim.url + "/v1/models", headers={"Authorization": "bearer sekrit"}).status_code == 200
    assert httpx.get(sim.url + "/v1/models", headers={"Authorization": "Basic sekrit"}).status_code == 401
    # Auth wraps CORS in vLLM (CORS is added first), so a 401 carries no CORS headers.
    origin = {"Origin": "http://localhost:8888"}
    assert "access-control-allow-origin" not in httpx.get(sim.url + "/v1/models", headers=origin).headers
    allowed = httpx.get(sim.url + "/v1/models", headers={**origin, "Authorization": "Bearer sekrit"})
    assert allowed.headers["access-control-allow-origin"] == "*"


def test_api_key_from_environment(start_sim) -> None:
    sim = start_sim(IMAGE_MODEL, env={"VLLM_API_KEY": "from-env"})
    assert httpx.get(sim.url + "/v1/models").status_code == 401
    assert httpx.get(sim.url + "/v1/models", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_injected_503_and_507(start_sim) -> None:
    sim = start_sim(IMAGE_MODEL, "--rate-503", "0.5", "--rate-507", "0.5", "--retry-after", "7", "--fault-seed", "3")
    replies = [httpx.post(sim.url + "/v1/images/generations", json=SMALL) for _ in range(12)]
    statuses = {reply.status_code for reply in replies}
    assert statuses == {503, 507}
    overloaded = next(r for r in replies if r.status_code == 503)
    assert overloaded.headers["retry-after"] == "7"
    assert overloaded.json()["error"]["type"] == "Service Unavailable"
    assert overloaded.json()["error"]["code"] == 503
    full = next(r for r in replies if r.status_code == 507).json()["error"]
    assert (full["type"], full["code"]) == ("Insufficient Storage", 507)
    # Same --fault-seed, same sequence: faults are repeatable.
    again = start_sim(IMAGE_MODEL, "--rate-503", "0.5", "--rate-507", "0.5", "--fault-seed", "3")
    repeat = [httpx.post(again.url + "/v1/images/generations", json=SMALL).status_code for _ in range(12)]
    assert repeat == [r.status_code for r in replies]


def test_injected_429_carries_retry_after(start_sim) -> None:
    sim = start_sim(IMAGE_MODEL, "--rate-429", "1", "--retry-after", "2.5")
    reply = httpx.post(sim.url + "/v1/images/generations", json=SMALL)
    assert (reply.status_code, reply.headers["retry-after"]) == (429, "2.5")
    assert reply.json() == {"error": {
        "message": "Too many requests (simulated by vomni-sim --rate-429); retry after the Retry-After delay.",
        "type": "Too Many Requests", "param": None, "code": 429,
    }}
    speech = start_sim(TTS_MODEL, "--rate-429", "0.5", "--fault-seed", "1")
    statuses = [httpx.post(speech.url + "/v1/audio/speech", json={"input": "hi"}, timeout=30).status_code
                for _ in range(8)]
    assert set(statuses) == {200, 429}  # a fraction, on every generation route


def test_a_429_rate_leaves_the_seeded_503_sequence_alone(start_sim) -> None:
    plain = start_sim(IMAGE_MODEL, "--rate-503", "0.3", "--fault-seed", "5")
    mixed = start_sim(IMAGE_MODEL, "--rate-503", "0.3", "--rate-429", "0.3", "--fault-seed", "5")
    first = [httpx.post(plain.url + "/v1/images/generations", json=SMALL).status_code for _ in range(10)]
    second = [httpx.post(mixed.url + "/v1/images/generations", json=SMALL).status_code for _ in range(10)]
    assert 503 in first and 429 in second
    assert [s == 503 for s in first] == [s == 503 for s in second]


def test_crash_after_n_generations_kills_the_engine(start_sim) -> None:
    # A long --dead-engine-window holds the dead engine up, so its checks cannot race the exit.
    sim = start_sim(IMAGE_MODEL, "--crash-after", "2", "--dead-engine-window", "3600")
    assert httpx.post(sim.url + "/v1/images/generations", json=SMALL).status_code == 200
    assert httpx.get(sim.url + "/health").status_code == 200
    assert httpx.post(sim.url + "/v1/images/generations", json=SMALL).status_code == 200  # the Nth is answered
    sim.wait_for_log("Engine failed, terminating server.")  # the engine dies right after that answer
    health = httpx.get(sim.url + "/health")
    assert (health.status_code, health.json()) == (503, {"status": "unhealthy"})
    assert httpx.get(sim.url + "/ping").status_code == 503
    late = httpx.post(sim.url + "/v1/images/generations", json=SMALL, headers={"X-Request-Id": "late"})
    assert late.status_code == 500
    assert late.json()["error"] == {
        "message": "EngineCore encountered an issue. See stack trace (above) for the root cause.",
        "type": "InternalServerError", "param": None, "code": 500, "request_id": "late", "error_stage_id": 0,
    }
    log = sim.log()
    assert "Engine core proc EngineCore_DP0 died unexpectedly" in log and "EngineDeadError" in log
    assert sim.process.poll() is None  # still inside its window


def test_a_dead_engine_exits_1_when_its_window_ends(start_sim) -> None:
    sim = start_sim(IMAGE_MODEL, "--crash-after", "1", "--dead-engine-window", "0.2")
    assert httpx.post(sim.url + "/v1/images/generations", json=SMALL).status_code == 200
    assert sim.process.wait(30) == 1
    log = sim.log()
    assert log.index("Engine failed, terminating server.") < log.index("INFO:     Shutting down")


def _leave_while_held(url: str, body: dict[str, object], request_id: str) -> None:
    """Send a generation, wait until the server holds it (/load), then disconnect."""

    async def main() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            sent = asyncio.create_task(
                client.post("/v1/images/generations", json=body, headers={"X-Request-Id": request_id})
            )
            while (await client.get("/load")).json()["server_load"] == 0:
                assert not sent.done(), "the generation finished before it was seen in flight"
                await asyncio.sleep(0.01)
            sent.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sent

    asyncio.run(main())


def test_latency_holds_a_generation_and_leaving_aborts_it(start_sim) -> None:
    sim = start_sim(IMAGE_MODEL, "--latency", "3600")
    _leave_while_held(sim.url, SMALL, "held-1")
    sim.wait_for_log("[AsyncOmni] Request held-1 aborted.", timeout=10)
    assert httpx.get(sim.url + "/load").json() == {"server_load": 0}


def test_client_disconnect_aborts_a_stream(start_sim) -> None:
    sim = start_sim(OMNI_MODEL, "--tokens-per-second", "5")
    body = {"messages": [{"role": "user", "content": "tell me a story"}], "modalities": ["text"], "stream": True}
    with httpx.stream("POST", sim.url + "/v1/chat/completions", json=body, headers={"X-Request-Id": "gone-1"}) as r:
        first = next(r.iter_lines())
        assert first.startswith("data: ")
    sim.wait_for_log("[AsyncOmni] Request chatcmpl-gone-1 aborted.", timeout=10)


def test_client_disconnect_aborts_an_image(image_server) -> None:
    aborted = re.compile(r"\[AsyncOmni\] Request img_gen-[0-9a-f]{32} aborted\.")
    before = len(aborted.findall(image_server.log()))
    _leave_while_held(image_server.url, {"prompt": "big", "size": "4096x4096"}, "unused")
    deadline = time.monotonic() + 10
    while len(aborted.findall(image_server.log())) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(aborted.findall(image_server.log())) == before + 1


def test_request_id_headers_flag(start_sim) -> None:
    sim = start_sim(IMAGE_MODEL, "--enable-request-id-headers")
    assert httpx.get(sim.url + "/health", headers={"X-Request-Id": "abc"}).headers["x-request-id"] == "abc"
    assert len(httpx.get(sim.url + "/health").headers["x-request-id"]) == 32


def test_request_id_is_not_echoed_by_default(image_server) -> None:
    assert "x-request-id" not in httpx.get(image_server.url + "/health", headers={"X-Request-Id": "abc"}).headers

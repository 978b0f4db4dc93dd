"""Cross-cutting behaviour of vomni-sim (reference §1–3.2): auth, error shapes, info routes, faults, aborts."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.sims import IMAGE_MODEL, OMNI_MODEL

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


def test_crash_after_n_generations_kills_the_engine(start_sim) -> None:
    sim = start_sim(IMAGE_MODEL, "--crash-after", "2", "--latency", "0.2")
    started = time.monotonic()
    assert httpx.post(sim.url + "/v1/images/generations", json=SMALL).status_code == 200
    assert time.monotonic() - started >= 0.2  # --latency is added before the work
    assert httpx.post(sim.url + "/v1/images/generations", json=SMALL).status_code == 200
    try:
        health = httpx.get(sim.url + "/health", timeout=2)
        assert (health.status_code, health.json()) == (503, {"status": "unhealthy"})
        late = httpx.post(sim.url + "/v1/images/generations", json=SMALL, headers={"X-Request-Id": "late"})
        assert late.status_code == 500
        assert late.json()["error"] == {
            "message": "EngineCore encountered an issue. See stack trace (above) for the root cause.",
            "type": "InternalServerError", "param": None, "code": 500, "request_id": "late", "error_stage_id": 0,
        }
    except httpx.TransportError:
        pass  # already gone: the unhealthy window is short
    assert sim.process.wait(10) == 1
    assert "Engine core proc EngineCore_DP0 died unexpectedly" in sim.log()
    assert "EngineDeadError" in sim.log()


def test_client_disconnect_aborts_a_stream(start_sim) -> None:
    sim = start_sim(OMNI_MODEL, "--tokens-per-second", "5")
    body = {"messages": [{"role": "user", "content": "tell me a story"}], "modalities": ["text"], "stream": True}
    with httpx.stream("POST", sim.url + "/v1/chat/completions", json=body, headers={"X-Request-Id": "gone-1"}) as r:
        first = next(r.iter_lines())
        assert first.startswith("data: ")
    sim.wait_for_log("[AsyncOmni] Request chatcmpl-gone-1 aborted.", timeout=10)


def test_client_disconnect_aborts_an_image(image_server) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(image_server.url + "/v1/images/generations", json={"prompt": "big", "size": "2048x2048"}, timeout=0.2)
    image_server.wait_for_log("[AsyncOmni] Request img_gen-", timeout=10)


def test_request_id_headers_flag(start_sim) -> None:
    sim = start_sim(IMAGE_MODEL, "--enable-request-id-headers")
    assert httpx.get(sim.url + "/health", headers={"X-Request-Id": "abc"}).headers["x-request-id"] == "abc"
    assert len(httpx.get(sim.url + "/health").headers["x-request-id"]) == 32


def test_request_id_is_not_echoed_by_default(image_server) -> None:
    assert "x-request-id" not in httpx.get(image_server.url + "/health", headers={"X-Request-Id": "abc"}).headers

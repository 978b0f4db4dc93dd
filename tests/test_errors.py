"""Error answers of every shape become the right exception, with advice and without secrets."""

from __future__ import annotations

import json

import pytest

from vomni_nb import errors as E
from vomni_nb.protocol.status import connection_error, error_from_response, timeout_error


def _err(status: int, body: object, headers: dict[str, str] | None = None, **kwargs: object) -> E.APIStatusError:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return error_from_response(status, content, headers or {}, url="http://h/v1/x", **kwargs)  # type: ignore[arg-type]


def _obj(message: str, code: int, type_: str = "Bad Request", param: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@pytest.mark.parametrize(
    ("status", "cls", "advice"),
    [
        (400, E.BadRequestError, "Check the request"),
        (401, E.AuthenticationError, "VOMNI_API_KEY"),
        (404, E.NotFoundError, "Check the name"),
        (409, E.ConflictError, "busy"),
        (413, E.PayloadTooLargeError, "Reduce the input"),
        (422, E.UnprocessableEntityError, "cannot be acted on"),
        (429, E.RateLimitError, "retry later"),
        (500, E.ServerError, "%omni_server logs"),
        (502, E.ServerError, "%omni_server logs"),
        (503, E.OverloadedError, "retry later"),
        (504, E.GatewayTimeoutError, "fewer steps"),
        (507, E.InsufficientStorageError, "lower the resolution"),
    ],
)
def test_status_classes_and_advice(status: int, cls: type, advice: str) -> None:
    error = _err(status, _obj("boom", status))
    assert type(error) is cls and error.status_code == status and advice in str(error) and "boom" in str(error)


def test_the_four_body_shapes_and_more() -> None:
    validation = _err(400, _obj("1 validation error:\n  {'loc': ('body', 'n')}", 400, param="body.n"))
    assert validation.param == "body.n" and validation.error_type == "Bad Request"
    serving = _err(404, _obj("The model `x` does not exist.", 404, "NotFoundError", "model"), served_models=["a", "b"])
    assert "This server serves: a, b" in str(serving)
    engine = _err(500, {"error": {"message": "EngineCore died", "type": "InternalServerError", "param": None,
                                  "code": 500, "request_id": "r1", "error_stage_id": 0}})
    assert engine.request_id == "r1"
    unauthorized = _err(401, {"error": "Unauthorized"})
    assert isinstance(unauthorized, E.AuthenticationError) and "Unauthorized" in str(unauthorized)
    assert "***" not in str(unauthorized)  # no key was sent: nothing may look redacted
    route = _err(404, {"detail": "Not Found"}, path="/v1/audio/speech")
    assert "no route /v1/audio/speech" in str(route)
    details = _err(422, {"detail": [{"loc": ["body", "image"], "msg": "Field required"}]})
    assert "body.image: Field required" in str(details)
    proxy = _err(502, b"<html><body>Bad gateway</body></html>")
    assert isinstance(proxy, E.ServerError) and "HTML page" in str(proxy)
    unhealthy = _err(503, {"status": "unhealthy"})
    assert isinstance(unhealthy, E.OverloadedError)
    mismatch = _err(400, _obj("Model mismatch: request specifies 'a' but server is running 'b'.", 400))
    assert "Leave model unset" in str(mismatch)


def test_retry_after_is_read() -> None:
    assert _err(503, _obj("busy", 503), {"retry-after": "3"}).retry_after == 3.0
    assert _err(503, _obj("busy", 503)).retry_after is None


def test_secrets_are_redacted_from_messages() -> None:
    error = _err(400, _obj("bad header Bearer sk-secret and key sk-secret", 400), secrets=["sk-secret"])
    assert "sk-secret" not in str(error)
    assert E.redact("--api-key abc VLLM_API_KEY=abc", None) == "--api-key *** VLLM_API_KEY=***"


def test_connection_and_timeout_messages() -> None:
    refused = connection_error("http://127.0.0.1:9")
    assert isinstance(refused, ConnectionError) and "http://127.0.0.1:9" in str(refused)
    assert "%omni_server status" in str(refused)
    slow = timeout_error("http://h/v1/x", 5)
    assert isinstance(slow, TimeoutError) and isinstance(slow, E.APIConnectionError) and "5 s" in str(slow)


def test_status_error_factory() -> None:
    assert type(E.status_error("x", status_code=418)) is E.APIStatusError
    assert type(E.status_error("x", status_code=599)) is E.ServerError
    assert E.status_error("x", status_code=503, retry_after=2.0).retry_after == 2.0
    # The docstring drawing names every class.
    assert E.__doc__ is not None
    for name in E.__all__:
        if name[0].isupper():
            assert name in E.__doc__, name


def test_an_error_answer_inside_a_200_reads_like_every_other() -> None:
    # Issue 7 item 18: "400 from the server: ..." beside "400 Bad Request from URL: ..."; now one format.
    from vomni_nb.protocol.parse import parse_chat_json
    from vomni_nb.provenance import Provenance

    body = {"error": {"message": "The model does not support Chat Completions API", "type": "BadRequestError",
                      "param": None, "code": 400}}
    with pytest.raises(E.BadRequestError) as caught:
        parse_chat_json(json.dumps(body).encode(), Provenance(server_url="http://h:1"))
    assert str(caught.value).startswith("400 Bad Request from http://h:1: The model does not support Chat")
    assert "%omni_server list" in caught.value.advice and str(caught.value).endswith(caught.value.advice)


def test_advice_the_server_already_gave_is_not_said_twice() -> None:
    # Issue 7 item 18: the 507 advice came twice (vomni-sim's words, then ours).
    said = _err(507, _obj("CUDA out of memory: try a smaller resolution, fewer images, or a quantized model", 507))
    assert str(said).count("quantized") == 1 and said.advice == ""
    bare = _err(507, _obj("CUDA out of memory", 507))
    assert "lower the resolution" in str(bare) and bare.advice.startswith("Not enough GPU memory")


def test_errors_render_short_in_ipython_and_in_full_under_xmode_verbose(tts_server, start_sim) -> None:  # type: ignore[no-untyped-def]
    # Issue 7 item 16: 35-90 lines of traceback for an input mistake, 193 for Ctrl-C. In a real kernel now:
    # the cause, the advice, and the user's line; an interrupted stream says what the server did and keeps the text.
    import re
    import time

    from tests.support.kernels import KernelSession
    from tests.support.sims import OMNI_MODEL

    slow_chat = start_sim(OMNI_MODEL, "--tokens-per-second", "10")
    kernel = KernelSession()

    def error_of(code: str) -> tuple[str, list[str]]:
        _, messages = kernel.run(code)
        (error,) = [m["content"] for m in messages if m["msg_type"] == "error"]
        return error["ename"], [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in error["traceback"]]

    try:
        kernel.run(f"from vomni_nb import OmniClient\ntts = OmniClient({tts_server.url!r})\n"
                   f"chat = OmniClient({slow_chat.url!r})")
        name, lines = error_of("x = 1\ntts.speak('hi', vocie='x')")
        assert name == "InvalidRequestError" and len(lines) == 2, lines
        assert lines[0].startswith("InvalidRequestError: speak() takes no 'vocie'; valid names: text, voice")
        assert "at cell line 2: tts.speak('hi', vocie='x')" in lines[1] and "%xmode Verbose" in lines[1]
        name, lines = error_of("tts.speak('hi', voice='nobody')")
        assert name == "BadRequestError" and len(lines) == 3, lines
        assert "Invalid voice 'nobody'" in lines[0] and lines[1] == "→ Check the request parameters against what this model supports."
        name, lines = error_of("%xmode Verbose\ntts.speak('hi', voice='nobody')")
        assert len(lines) > 10 and any("_plans.py" in line or "_core.py" in line for line in lines)
        kernel.run("%xmode Context")
        before = slow_chat.log().count("aborted.")
        msg_id = kernel.send("stream = chat.chat_stream('Tell me a long story')\nfor event in stream:\n    pass",
                             allow_stdin=True)
        time.sleep(2.0)  # ten tokens a second: some text has arrived
        kernel.km.interrupt_kernel()
        _, messages = kernel.collect(msg_id)
        (error,) = [m["content"] for m in messages if m["msg_type"] == "error"]
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in error["traceback"]]
        assert error["ename"] == "Interrupted" and len(lines) <= 3, lines
        assert "interrupted; the server aborted the request; what arrived is in .partial" in lines[0]
        assert "at cell line 2: for event in stream:" in lines[-1]  # the user's line, not a library frame
        _, messages = kernel.run("try:\n    stream.finish()\nexcept Exception as error:\n    print(type(error).__name__, "
                                 "len(stream.text) > 0, error.partial == stream.text, error)")
        printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
        assert printed.startswith("StreamError True True The stream was interrupted before it finished (by this "
                                  "client, not the server)"), printed
    finally:
        kernel.close()
    deadline = time.monotonic() + 5
    while slow_chat.log().count("aborted.") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow_chat.log().count("aborted.") == before + 1


def test_a_server_start_error_renders_its_advice_once_and_its_log_tail() -> None:
    from vomni_nb._tracebacks import render

    error = E.ServerExited("org/m exited: CUDA out of memory\nAdvice: lower --gpu-memory-utilization\nLog: /x.log",
                           cause="CUDA out of memory", advice="lower --gpu-memory-utilization", log_tail="a\nb",
                           log_path="/x.log", returncode=1)
    lines = [line.replace("\x1b[31m", "").replace("\x1b[0m", "") for line in render(error)]
    assert lines[0] == "ServerExited: org/m exited: CUDA out of memory" and lines[1] == "Log: /x.log"
    assert sum("gpu-memory-utilization" in line for line in lines) == 1 and lines[2] == "→ lower --gpu-memory-utilization"
    assert lines[3:6] == ["--- last log lines (/x.log) ---", "a", "b"]

"""Routing: the capability table, and which server a task goes to, with real simulators attached."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.sims import EDIT_MODEL, IMAGE_MODEL, OMNI_MODEL, TTS_MODEL, VIDEO_MODEL
from vomni_nb.errors import ServerManagerError, WrongServerError
from vomni_nb.routing import SUGGESTED_MODELS, main_task, replicas, resolve, tasks_for
from vomni_nb.server import ServerManager


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerManager]:
    monkeypatch.delenv("VOMNI_SERVER", raising=False)
    monkeypatch.delenv("VOMNI_BASE_URL", raising=False)
    found = ServerManager(registry_dir=tmp_path / "registry", register_atexit=False)
    yield found
    found.shutdown()


def test_routing_reads_the_clients_capability_table() -> None:
    # The table itself (and its agreement with the simulator's) is tested with protocol/capabilities.py.
    assert main_task(IMAGE_MODEL) == "image" and main_task(EDIT_MODEL) == "edit"
    assert main_task(OMNI_MODEL) == "chat" and main_task(TTS_MODEL) == "speech" and main_task(VIDEO_MODEL) == "video"
    assert tasks_for("Qwen/Qwen3-TTS-12Hz-9B-Whatever") == {"speech"} and tasks_for("Wan-AI/Wan2.9-X") == {"video"}
    assert tasks_for("tongyi-mai/z-image-turbo") is None and tasks_for("house-model") is None and tasks_for(None) is None
    for task, model in SUGGESTED_MODELS.items():
        assert main_task(model) == task


def test_a_task_goes_to_the_server_whose_model_does_it(manager: ServerManager, image_server: Any, tts_server: Any,
                                                       edit_server: Any, omni_server: Any) -> None:
    for sim in (tts_server, edit_server, image_server, omni_server):
        manager.attach(sim.url)
    assert resolve("image", manager=manager).url == image_server.url  # not the edit model, which also was there
    assert resolve("edit", manager=manager).url == edit_server.url
    assert resolve("speech", manager=manager).url == tts_server.url
    assert resolve("chat", manager=manager).url == omni_server.url
    with pytest.raises(ServerManagerError, match=f"`%omni_server start {VIDEO_MODEL} --sim` without one"):
        resolve("video", manager=manager)


def test_several_models_for_one_task_ask_for_a_choice_unless_one_is_the_default(
        manager: ServerManager, image_server: Any, start_sim: Any) -> None:
    other = start_sim("Qwen/Qwen-Image")
    manager.attach(image_server.url)
    manager.attach(other.url)
    with pytest.raises(ServerManagerError, match="several servers can make images"):
        resolve("image", manager=manager)
    manager.use("Qwen/Qwen-Image")
    assert resolve("image", manager=manager).url == other.url
    assert resolve("image", model=IMAGE_MODEL, manager=manager).url == image_server.url


def test_replicas_of_one_model_are_all_targets(manager: ServerManager, image_server: Any, start_sim: Any) -> None:
    second = start_sim(IMAGE_MODEL)
    manager.attach(image_server.url)
    manager.attach(second.url)
    target = resolve("image", manager=manager)
    assert {server.url for server in target.servers} == {image_server.url, second.url}
    assert resolve("image", model=IMAGE_MODEL, manager=manager).servers == target.servers
    assert len(resolve("image", server=second.url, manager=manager).servers) == 1  # a named server is that one alone
    second.stop()
    assert [server.url for server in replicas(target, timeout=1.0)] == [image_server.url]  # the dead one is left out


def test_a_known_model_that_cannot_do_the_task_is_refused_naming_those_that_can(
        manager: ServerManager, image_server: Any, tts_server: Any) -> None:
    manager.attach(image_server.url)
    manager.attach(tts_server.url)
    with pytest.raises(WrongServerError, match="a TTS model: it cannot make images") as caught:
        resolve("image", server=TTS_MODEL, manager=manager)
    assert caught.value.servers == [IMAGE_MODEL]
    with pytest.raises(WrongServerError, match="an image model: it cannot speak"):
        resolve("speech", model=IMAGE_MODEL, manager=manager)


def test_an_unknown_model_is_used_only_when_nothing_better_is_known(manager: ServerManager, start_sim: Any,
                                                                    image_server: Any) -> None:
    alias = start_sim(IMAGE_MODEL, "--served-model-name", "house-painter")
    manager.attach(alias.url)
    assert resolve("image", manager=manager).url == alias.url  # the only server
    manager.attach(image_server.url)
    assert resolve("image", manager=manager).url == image_server.url  # a known image model wins
    manager.use("house-painter")
    assert resolve("image", manager=manager).url == image_server.url


def test_urls_and_the_default_server_setting(manager: ServerManager, image_server: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    target = resolve("image", server=image_server.url, manager=manager)  # a URL the manager does not know
    assert target.url == image_server.url and target.model is None
    with pytest.raises(ServerManagerError, match="no server 'nonesuch' here"):
        resolve("image", server="nonesuch", manager=manager)
    monkeypatch.setenv("VOMNI_SERVER", image_server.url)
    assert resolve("image", manager=manager).url == image_server.url
    monkeypatch.delenv("VOMNI_SERVER")
    monkeypatch.setenv("VOMNI_BASE_URL", image_server.url)  # the client's own fallback, with no servers at all
    assert resolve("image", manager=manager).url == image_server.url


def test_addresses_are_told_from_names(manager: ServerManager) -> None:
    from vomni_nb.routing import _looks_like_url

    for text in ("http://gpu-box:8091", "gpu-box:8091", "127.0.0.1:8091/v1", "[::1]:8091", "https://h.example"):
        assert _looks_like_url(text), text
    for text in ("img", "Tongyi-MAI/Z-Image-Turbo", "my server", "Qwen/Qwen-Image@h"):
        assert not _looks_like_url(text), text


def test_a_model_that_runs_nowhere_and_cannot_do_the_task_is_refused_as_such(manager: ServerManager,
                                                                               image_server: Any) -> None:
    manager.attach(image_server.url)
    # Not "start it": starting a video model would not make it speak either.
    with pytest.raises(WrongServerError, match="cannot speak") as caught:
        resolve("speech", model=VIDEO_MODEL, manager=manager)
    assert "%omni_server start" not in str(caught.value).split("cannot speak")[0]
    assert main_task(None) is None and main_task("house-painter") is None  # unknown: no task to suggest


def test_an_unknown_model_whose_server_refuses_the_request_is_the_wrong_server(
        manager: ServerManager, start_sim: Any, omni_server: Any) -> None:
    import vomni_nb
    from vomni_nb.server import set_default_manager

    # Only the server's answer can tell what an unknown id does: a 400 that names the endpoint's kind
    # must read as the wrong server (naming the servers that could), not as a bad request.
    alias = start_sim(TTS_MODEL, "--served-model-name", "house-voice")
    manager.attach(omni_server.url)
    with set_default_manager(manager), pytest.raises(WrongServerError) as caught:
        vomni_nb.chat("hello", server=alias.url, status=False)
    text = str(caught.value)
    assert "cannot" in text and "does not support Chat Completions" in text, text
    assert caught.value.servers == [OMNI_MODEL]


def test_a_url_whose_model_the_client_knows_is_refused_before_sending(manager: ServerManager, tts_server: Any,
                                                                      image_server: Any) -> None:
    import vomni_nb
    from vomni_nb.server import set_default_manager

    manager.attach(image_server.url)
    with set_default_manager(manager), pytest.raises(WrongServerError) as caught:
        vomni_nb.image("a cat", server=tts_server.url, size="64x64", status=False)  # a URL the manager does not know
    assert "cannot make images" in str(caught.value) and caught.value.servers == [IMAGE_MODEL]

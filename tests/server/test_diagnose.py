"""diagnose(): each failure of reference §6 gets its own cause and advice, from the real texts."""

from __future__ import annotations

import pytest

from vomni_nb.server.diagnose import advance_phase, diagnose, strip_ansi, tail_lines

P = "(APIServer pid=7) INFO 11-24 21:47:00 [launcher.py:215] vLLM server version 0.30.0, serving model m\n"

CASES = {
    "oom": (P + "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.\n"
            "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}\n", 1),
    "free-memory": (P + "ValueError: Free memory on device cuda:0 (10.52/79.19 GiB) on startup is less than desired "
                    "GPU memory utilization (0.9, 71.27 GiB).\nRuntimeError: Engine core initialization failed. "
                    "See root cause above.\n", 1),
    "missing-model": (P + "huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error.\n\n"
                      "Repository Not Found for url: https://huggingface.co/api/models/x/y/revision/main.\n", 1),
    "gated-model": (P + "huggingface_hub.errors.GatedRepoError: 403 Client Error.\n"
                    "Cannot access gated repo for url https://huggingface.co/x/y/resolve/main/config.json.\n", 1),
    "port-in-use": ("Traceback (most recent call last):\nOSError: [Errno 98] Address already in use\n", 1),
    "bad-flag": ("usage: vllm serve [model_tag] [options]\n"
                 "vllm serve: error: unrecognized arguments: --stage-configs-path x.yaml\n", 2),
    "init-timeout": (P + "(APIServer pid=7) WARNING 11-24 21:57:00 [omni_engine_base.py:520] [OmniEngine] "
                     "Orchestrator startup timed out after 600s.\n"
                     "TimeoutError: Orchestrator did not become ready within 600s\n", 1),
    "engine-dead": (P + "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.\n", 1),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_failure_has_its_cause(kind: str) -> None:
    log, code = CASES[kind]
    found = diagnose(log, code)
    assert found.kind == kind
    assert found.cause and found.advice
    assert "\n" not in found.cause and "\n" not in found.advice


def test_causes_differ_and_quote_the_server() -> None:
    causes = {kind: diagnose(*CASES[kind]).cause for kind in CASES}
    assert len(set(causes.values())) == len(causes)
    assert "--stage-configs-path" in causes["bad-flag"]
    assert "600s" in causes["init-timeout"] and "[launcher.py" not in causes["init-timeout"]


def test_oom_is_named_not_the_generic_engine_failure_after_it() -> None:
    assert diagnose(CASES["oom"][0], 1).kind == "oom"


def test_ansi_colour_does_not_hide_a_cause() -> None:
    coloured = "\x1b[1;31mtorch.OutOfMemoryError: CUDA out of memory.\x1b[0m\r\n"
    assert diagnose(coloured, 1).kind == "oom"
    assert strip_ansi(coloured) == "torch.OutOfMemoryError: CUDA out of memory.\n"


def test_an_unknown_id_in_the_simulator_is_told_how_to_name_a_family() -> None:
    sim = ("(APIServer pid=7) WARNING 11-24 23:31:12 [vomni_sim.py:1] vomni-sim: this is a SIMULATOR of vLLM-Omni "
           "0.30.0 -- no model is loaded and every output is synthetic.\n")
    found = diagnose(sim + CASES["missing-model"][0], 1)
    assert found.kind == "missing-model" and "--family" in found.advice and "HF_TOKEN" not in found.advice
    assert "--family" not in diagnose(*CASES["missing-model"]).advice


def test_health_503_without_a_log_line_is_engine_death() -> None:
    assert diagnose(P, None, 503).kind == "engine-dead"


def test_unknown_quotes_the_last_exception_or_the_exit_code() -> None:
    found = diagnose(P + "KeyError: 'transformer'\n", 1)
    assert found.kind == "unknown" and "KeyError: 'transformer'" in found.cause
    assert "code 3" in diagnose(P, 3).cause


def test_killed_by_sigkill_suggests_host_memory() -> None:
    found = diagnose(P, -9)
    assert found.kind == "killed" and "SIGKILL" in found.cause and "RAM" in found.advice


def test_tail_lines_skips_blanks_and_strips_colour() -> None:
    assert tail_lines("a\n\n\x1b[32mb\x1b[0m\nc\n", 2) == "b\nc"


def test_phases_move_forward_only() -> None:
    phase = advance_phase("launching", P)
    assert phase == "starting"
    phase = advance_phase(phase, "[OmniEngine] Initializing with model m\n")
    assert phase == "loading weights"
    phase = advance_phase(phase, "[Stage-0] Stage initialized\nWarming up speech generation (simulated)...\n")
    assert phase == "warming up"
    assert advance_phase(phase, "[OmniEngine] Initializing with model m\n") == "warming up"
    assert advance_phase(phase, "Starting vLLM API server 0 on http://0.0.0.0:8091\n") == "starting HTTP server"

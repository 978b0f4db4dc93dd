"""Advice that names a magic (``%omni_server ...``), written once so every message says the same thing.

Error messages end with what to do next, and in a notebook that is usually a magic to type. Keeping
every such sentence here means renaming a magic or a subcommand is one edit, and a reader can see at
a glance everything the library may tell a user to type.

Rules: advice names only options that exist, and every command is written in backticks exactly as
it can be typed (a test parses each one with the magic's own parser). Each magic has a Python twin,
so where a message may reach a Python user the twin is named beside the magic. No imports, so the
pure layers (``protocol/``) may use these: plain constants and small functions of the names they fill in.
"""

from __future__ import annotations

__all__ = [
    "START_ONE",
    "LIST_SERVERS",
    "PICK_ONE",
    "name_which",
    "server_logs",
    "server_restart",
    "server_stop",
    "server_start",
    "serve_model",
    "start_for_task",
    "use_server",
    "attach_instead",
    "keep_to_share",
    "stops_with_kernel",
    "name_taken",
    "served_elsewhere",
    "second_copy",
    "sim_family",
    "CHECK_SERVER_STATUS",
    "START_OR_CHECK_SERVER",
    "SEE_SERVER_LOG",
    "SERVER_FAILED",
    "OVERLOADED",
    "WRONG_KIND_OF_SERVER",
    "wrong_server",
    "voices_need_base",
    "base_needs_a_voice",
    "voice_design_needs_instructions",
    "upload_on_custom_voice",
    "video_left_running",
    "interrupted",
]

# --- the client's advice ----------------------------------------------------------------------
# A request broke off mid-way: the server may be gone or restarting.
CHECK_SERVER_STATUS = "Check the server with `%omni_server status`."

# Nothing answered at the address.
START_OR_CHECK_SERVER = "Is it running? Check with `%omni_server status`, or start one with `%omni_server start MODEL`."

# A generation failed or a stream broke off on the server's side.
SEE_SERVER_LOG = "The server may have failed: see its log (`%omni_server logs`)."

# 500 and other 5xx without advice of their own.
SERVER_FAILED = "The server failed; see its log (`%omni_server logs`)."

# 503 that is not about the kind of model: busy, or still starting.
OVERLOADED = "The server is overloaded or not ready: retry later, and check it with `%omni_server status`."

# A request the server's model cannot serve (an image from a TTS model, chat on a diffusion-only model).
WRONG_KIND_OF_SERVER = ("This server's model cannot do this: send the request to a server whose model can "
                        "(`%omni_server list`, or OmniClient(url) of another server).")


# The checkpoints named in advice, one per job (the smallest that does it).
_SERVER_FOR = {
    "image": ("images", "an image server such as Tongyi-MAI/Z-Image-Turbo"),
    "edit": ("edits", "an image-editing server such as Qwen/Qwen-Image-Edit"),
    "chat": ("chat", "an omni chat server such as Qwen/Qwen2.5-Omni-7B"),
    "speech": ("speech", "a TTS server such as Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"),
    "video": ("video", "a video server such as Wan-AI/Wan2.2-TI2V-5B-Diffusers"),
}
CUSTOM_VOICE_CHECKPOINT = "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"
BASE_CHECKPOINT = "Qwen/Qwen3-TTS-12Hz-1.7B-Base"


def wrong_server(model: str, noun: str, task: str, family: str = "") -> str:
    """A request whose server's model cannot do it: what the model is, and where the task goes instead."""
    what, target = _SERVER_FOR.get(task, (task, "a server whose model does it"))
    text = f"{model} is {noun}; send {what} to {target} (`%omni_server list`; Python: default_manager().list_servers())"
    if task == "speech" and family == "omni":
        text += ", or ask this model for a spoken answer: chat(..., modalities=['text', 'audio'])"
    elif task == "image" and family == "image":
        text += ", or use image() instead of chat()"
    return text + "."


def voices_need_base(model: str) -> str:
    """Speaking with an uploaded voice on a checkpoint with fixed speakers."""
    return (f"{model} is a CustomVoice checkpoint: it speaks only its built-in voices (client.voices.list()). "
            f"Uploaded voices and ref_audio cloning need a Base checkpoint such as {BASE_CHECKPOINT} "
            f"({server_start(BASE_CHECKPOINT)}).")


def base_needs_a_voice(model: str) -> str:
    """Speaking without a voice to clone on a Base (voice-cloning) checkpoint."""
    return (f"{model} is a Base (voice-cloning) checkpoint: give voice= an uploaded voice "
            "(client.voices.upload(...)), or ref_audio= a sample of the voice with ref_text= its transcript. "
            f"Built-in voices need a CustomVoice checkpoint such as {CUSTOM_VOICE_CHECKPOINT}.")


def voice_design_needs_instructions(model: str) -> str:
    return (f"{model} is a VoiceDesign checkpoint: describe the voice in instructions=... . Built-in voices need a "
            f"CustomVoice checkpoint ({CUSTOM_VOICE_CHECKPOINT}), uploaded voices a Base one ({BASE_CHECKPOINT}).")


def upload_on_custom_voice(model: str, name: str) -> str:
    """The warning when a voice is uploaded to a server that cannot speak with it."""
    return (f"Voice {name!r} was uploaded, but {model} cannot speak with it: "
            + voices_need_base(model).split(": ", 1)[1])


def video_left_running(job_id: str, waited: float) -> str:
    """A video call that stopped waiting: the job goes on, and how to pick it up (a kernel restart included)."""
    return (f"Video job {job_id} is not done after {waited:g} s; it is still running on the server. "
            f"Pick it up with client.wait_video({job_id!r}) (also after a kernel restart), "
            f"fetch it once done with client.download_video({job_id!r}), or stop it with "
            f"client.cancel_video({job_id!r}); raise timeout=... to wait longer next time.")


def interrupted(what: str = "the server aborted the request") -> str:
    """Ctrl-C during a request: what became of it on the server."""
    return f"interrupted; {what}"


# --- the server manager's advice --------------------------------------------------------------
START_ONE = "start one with `%omni_server start MODEL` (add --sim without a GPU)"
LIST_SERVERS = "`%omni_server list`"
PICK_ONE = "pick one with `%omni_server use NAME` (Python: default_manager().use(NAME)), or ask for the model by name"


def name_which(action: str, names: str) -> str:
    """``%omni_server logs|stop|restart`` with no NAME while several servers run and none is the default."""
    python = {"logs": "default_manager().get(NAME).logs()", "stop": "default_manager().stop(NAME)",
              "restart": "default_manager().restart(NAME)"}.get(action, f"default_manager().{action}(NAME)")
    return (f"several servers run ({names}); say which: `%omni_server {action} NAME` (Python: {python}), "
            "or make one the default with `%omni_server use NAME`")


def server_logs(name: str, lines: int | None = None) -> str:
    """``%omni_server logs NAME [-n N]``: the one place a server's log is shown."""
    return f"`%omni_server logs {name}" + (f" -n {lines}`" if lines else "`")


def server_restart(name: str) -> str:
    return f"`%omni_server restart {name}`"


def server_stop(name: str) -> str:
    return f"`%omni_server stop {name}`"


def server_start(model: str, *flags: str) -> str:
    return "`" + " ".join(("%omni_server start", model, *flags)) + "`"


def serve_model(model: str) -> str:
    """What to do when no server serves ``model``."""
    return f"start it with {server_start(model)} (add --sim without a GPU)"


def start_for_task(model: str) -> str:
    """What to run when no server can do a task: ``model`` is one whose family does it."""
    return (f"Start one: {server_start(model)} on a GPU, or {server_start(model, '--sim')} without one "
            "(vomni-sim, the CPU simulator); the magic then finds it.")


def use_server(names: list[str]) -> str:
    """Naming the servers that can do a request, for a magic's --server flag and a twin's server=."""
    first = names[0]
    return f"Servers that can: {', '.join(names)}; pass --server {first} (server={first!r} in Python)."


def attach_instead(url: str) -> str:
    return f"`%omni_server attach {url}` (Python: default_manager().attach({url!r}))"


def keep_to_share(model: str) -> str:
    """How the kernel that owns a server shares it with every kernel: start it again with ``--keep``."""
    return f"{server_start(model, '--keep')} in that kernel shares it with every kernel"


def stops_with_kernel(model: str) -> str:
    """The ready line of a real server that stops with its kernel."""
    return (f"it stops with this kernel, a kernel restart included; {server_start(model, '--keep')} "
            "(keep=True) keeps it running")


def name_taken(name: str, holder: str) -> str:
    """Refusing a name another server of this kernel has (``holder`` says which)."""
    return f"the name {name!r} already names {holder} here; pick another with --name NAME (name= in Python)"


def sim_family(model: str = "MODEL") -> str:
    return f"`%omni_server start {model} --sim -- --family image|omni|tts|video`"


def served_elsewhere(model: str, kernel_pid: int, url: str) -> str:
    """Refusing to load a real model a second time because another kernel serves it."""
    return (f"kernel {kernel_pid} already serves {model} at {url}; a second copy would load the model again "
            f"(on a GPU: twice the memory, or out of memory). Use that one: {attach_instead(url)} (it stops "
            f"when kernel {kernel_pid} does; {keep_to_share(model)}); or start a second copy with --another "
            "(another=True).")


def second_copy(model: str, kernel_pid: int, url: str) -> str:
    """The ready-line note of a simulator started although another kernel serves the model."""
    return f"kernel {kernel_pid} already serves {model} at {url}; this is a second copy ({attach_instead(url)} shares that one)"

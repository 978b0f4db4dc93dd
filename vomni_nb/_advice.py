"""Advice that names a magic (``%omni_server ...``), in one place: the client's half.

Error messages end with what to do next, and in a notebook that is usually a magic to type. Keeping
every such sentence here means renaming a magic or a subcommand is one edit, and a reader can see at
a glance everything the client may tell a user to type. Plain constants only (no imports), so the
pure layers (``protocol/``) may use them. The server manager's advice lives beside these.
"""

from __future__ import annotations

__all__ = [
    "CHECK_SERVER_STATUS",
    "START_OR_CHECK_SERVER",
    "SEE_SERVER_LOG",
    "SERVER_FAILED",
    "OVERLOADED",
    "WRONG_KIND_OF_SERVER",
]

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

"""Pure protocol code shared by both clients: build requests, validate input, parse responses.

Nothing in this package sends a request or imports httpx. Import the submodule you need
(``from vomni_nb.protocol.build import build_image_request``): this package imports none of them,
so using one loads only what it needs. Submodules: ``validate`` (input checks), ``build`` (request
bodies), ``media`` (media inputs), ``parse`` (response bodies), ``status`` (error answers),
``streaming`` (SSE and raw-audio stream state), ``sse``, ``wav``, ``dataurl``, ``retry``,
``capabilities`` (what each model id does), ``batch`` (the speech batch route), ``mp4`` (a video's
geometry), ``limits`` (``Limits``), ``body`` (an answer read within them), ``untrusted`` (bounded JSON).
"""

from __future__ import annotations

__all__ = ["batch", "body", "build", "capabilities", "dataurl", "limits", "media", "mp4", "parse", "retry", "sse",
           "status", "streaming", "untrusted", "validate", "wav"]

"""Pure protocol code shared by both clients: build requests, validate input, parse responses.

Nothing in this package sends a request or imports httpx. Import the submodule you need
(``from vomni_nb.protocol.build import build_image_request``): this package imports none of them,
so using one loads only what it needs. Submodules: ``validate`` (input checks), ``build`` (request
bodies), ``media`` (media inputs), ``parse`` (response bodies), ``status`` (error answers),
``streaming`` (SSE and raw-audio stream state), ``sse``, ``wav``, ``dataurl``, ``retry``.
"""

from __future__ import annotations

__all__ = ["build", "dataurl", "media", "parse", "retry", "sse", "status", "streaming", "validate", "wav"]

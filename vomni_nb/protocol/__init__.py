"""Pure protocol code shared by both clients: build requests, validate input, parse responses.

Nothing in this package sends a request. Submodules: ``validate`` (input checks), ``build``
(request bodies), ``parse`` (response bodies), ``status`` (error answers), ``streaming`` (SSE and
raw-audio stream state), ``sse``, ``wav``, ``dataurl``, ``retry``.
"""

from __future__ import annotations

from vomni_nb.protocol.build import *  # noqa: F401,F403
from vomni_nb.protocol.build import __all__ as _build
from vomni_nb.protocol.dataurl import *  # noqa: F401,F403
from vomni_nb.protocol.dataurl import __all__ as _dataurl
from vomni_nb.protocol.parse import *  # noqa: F401,F403
from vomni_nb.protocol.parse import __all__ as _parse
from vomni_nb.protocol.retry import *  # noqa: F401,F403
from vomni_nb.protocol.retry import __all__ as _retry
from vomni_nb.protocol.sse import *  # noqa: F401,F403
from vomni_nb.protocol.sse import __all__ as _sse
from vomni_nb.protocol.status import *  # noqa: F401,F403
from vomni_nb.protocol.status import __all__ as _status
from vomni_nb.protocol.streaming import *  # noqa: F401,F403
from vomni_nb.protocol.streaming import __all__ as _streaming
from vomni_nb.protocol.validate import *  # noqa: F401,F403
from vomni_nb.protocol.validate import __all__ as _validate
from vomni_nb.protocol.wav import *  # noqa: F401,F403
from vomni_nb.protocol.wav import __all__ as _wav

__all__ = [*_build, *_dataurl, *_parse, *_retry, *_sse, *_status, *_streaming, *_validate, *_wav]

"""The kernel-side server manager: ``default_manager().start("Qwen/Qwen-Image", sim=True)``.

Layout (one job per module): ``manager`` (the ``ServerManager``), ``default`` (the kernel's default one),
``books`` (servers by name, lookup),
``handle`` (``Server``, ``ServerStatus``), ``reporting`` (how a start reports progress), ``reconcile``
(the registry seen from this kernel: reuse, adopt, orphans), ``entries`` (handle <-> registry row),
``registry`` (the shared file), ``safety`` (checks before a signal), ``ports``, ``launch`` (processes,
groups), ``logfiles``, ``readiness``, ``probe``, ``diagnose``, ``command``, ``gpu``, ``watchdog``.
No module here imports IPython or ``vomni_nb.display``.
"""

from __future__ import annotations

from vomni_nb.server.diagnose import Diagnosis, diagnose
from vomni_nb.server.handle import Server, ServerStatus
from vomni_nb.server.default import default_manager, set_default_manager
from vomni_nb.server.manager import ServerManager
from vomni_nb.server.reporting import ReporterFactory, StartReporter

__all__ = [
    "ServerManager",
    "Server",
    "ServerStatus",
    "Diagnosis",
    "diagnose",
    "default_manager",
    "set_default_manager",
    "StartReporter",
    "ReporterFactory",
]

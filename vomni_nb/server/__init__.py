"""The kernel-side server manager: ``default_manager().start("Qwen/Qwen-Image", sim=True)``."""

from __future__ import annotations

from vomni_nb.server.diagnose import Diagnosis, diagnose
from vomni_nb.server.handle import Server, ServerStatus
from vomni_nb.server.manager import ServerManager, default_manager

__all__ = ["ServerManager", "Server", "ServerStatus", "Diagnosis", "diagnose", "default_manager"]

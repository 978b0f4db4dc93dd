"""The manager's books: which servers this kernel knows, by name, and which one is the default.

Lookup is forgiving (a name, the model id, its short name, the URL, the port or the pid all find a
server); the books themselves are strict: one name, one server, and nothing leaves them except
through ``remove`` (which the manager calls only after stopping or forgetting the server).
"""

from __future__ import annotations

from vomni_nb import _advice
from vomni_nb.errors import ServerManagerError
from vomni_nb.server.handle import Server

__all__ = ["Books"]


class Books:
    """Servers by name, plus the default for requests that name no model."""

    def __init__(self) -> None:
        self._servers: dict[str, Server] = {}
        self._default: str | None = None

    @property
    def servers(self) -> list[Server]:
        return list(self._servers.values())

    def holder(self, name: str) -> Server | None:
        """The server called exactly ``name``."""
        return self._servers.get(name)

    def add(self, server: Server) -> None:
        held = self._servers.get(server.name)
        assert held is None or held is server, f"{server.name!r} names another server: stop that one first"
        self._servers[server.name] = server

    def remove(self, server: Server) -> None:
        if self._servers.get(server.name) is server:
            del self._servers[server.name]
        if self._default == server.name:
            self._default = None

    def rename(self, server: Server, name: str) -> None:
        """Call ``server`` ``name`` (which must be free); the default follows it."""
        known = self._servers.get(server.name) is server
        if known:
            del self._servers[server.name]
        if self._default == server.name:
            self._default = name
        server._rename(name)
        if known:
            self.add(server)

    def match(self, key: str) -> Server | None:
        key = key.strip()
        by_name = self._servers.get(key)
        if by_name is not None:
            return by_name
        lowered = key.lower().rstrip("/")
        for server in self._servers.values():
            candidates = {server.model.lower(), server.url.lower(), str(server.port), str(server.pid)}
            if lowered in candidates or server.model.lower().rsplit("/", 1)[-1] == lowered:
                return server
        return None

    def names_text(self) -> str:
        return ", ".join(self._servers) or f"none ({_advice.START_ONE})"

    def get(self, name: str | None = None) -> Server:
        """The server called ``name`` (name, model id, short model name, URL, port or pid), or the default."""
        if name is None:
            return self.server_for(None)
        found = self.match(name)
        if found is None:
            raise ServerManagerError(f"no server {name!r} here; running: {self.names_text()}")
        return found

    def server_for(self, model: str | None = None) -> Server:
        """The server that serves ``model``; without a model, the default (``use``) or the only one."""
        if model is None:
            if self._default in self._servers:
                return self._servers[self._default]
            if len(self._servers) == 1:
                return next(iter(self._servers.values()))
            if not self._servers:
                raise ServerManagerError(f"no server is running; {_advice.START_ONE}")
            raise ServerManagerError(f"several servers run ({self.names_text()}); {_advice.PICK_ONE}")
        found = self.match(model)
        if found is None:
            raise ServerManagerError(
                f"no server serves {model!r}; running: {self.names_text()}. {_advice.serve_model(model)}")
        return found

    def use(self, name: str) -> Server:
        server = self.get(name)
        self._default = server.name
        return server

    @property
    def default_name(self) -> str | None:
        return self._default if self._default in self._servers else None

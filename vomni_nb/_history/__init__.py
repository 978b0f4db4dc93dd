"""The history store (implementation package; the public names are re-exported by ``vomni_nb``).

``store`` holds :class:`HistoryStore` and the ``history()`` table; ``schema`` the append-only
migrations and the checks that refuse files we did not write; ``rows`` the pure record <-> row
mapping and search SQL; ``blobs`` the content-addressed file store; ``view`` the static table;
``sources`` reads input media named by a history id (:func:`load_source`); ``replay`` sends a
recorded request again (``vomni_nb.rerun``; it loads the client, so it is not imported here).
The package is private (``_history``) so that ``vomni_nb.history`` can be the function users call.
"""

from vomni_nb._history.sources import load_source, parse_history_id, reading_store
from vomni_nb._history.store import *  # noqa: F401,F403
from vomni_nb._history.store import __all__ as _store_names

__all__ = [*_store_names, "load_source", "parse_history_id", "reading_store"]

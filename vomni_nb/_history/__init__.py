"""The history store (implementation package; the public names are re-exported by ``vomni_nb``).

``store`` holds :class:`HistoryStore` and the ``history()`` table; ``schema`` the append-only
migrations and the checks that refuse files we did not write; ``rows`` the pure record <-> row
mapping and search SQL; ``blobs`` the content-addressed file store; ``view`` the static table.
The package is private (``_history``) so that ``vomni_nb.history`` can be the function users call.
"""

from vomni_nb._history.store import *  # noqa: F401,F403
from vomni_nb._history.store import __all__ as __all__  # noqa: F401

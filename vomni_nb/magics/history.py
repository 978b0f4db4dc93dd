"""``%omni_history``: the last generations as a table, a thin magic over the twin :func:`vomni_nb.history`."""

from __future__ import annotations

from typing import Any

from IPython.core.magic import line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from vomni_nb.magics._common import VomniMagics, parse_line, short_error, split_quiet

__all__ = ["HistoryMagics", "history_call"]


def history_call(line: str) -> tuple[dict[str, Any], bool]:
    """(the keyword arguments of ``vomni_nb.history``, whether a trailing ``;`` silences it)."""
    line, quiet = split_quiet(line)
    args = parse_line(HistoryMagics.omni_history, line)
    return {"n": args.n, "search": args.search, "kind": args.kind, "model": args.model}, quiet


@magics_class
class HistoryMagics(VomniMagics):
    """``%omni_history`` (``%load_ext vomni_nb``)."""

    @no_var_expand
    @magic_arguments()
    @argument("-n", type=int, default=20, help="how many rows (default 20)")
    @argument("--search", metavar="TEXT", default=None, help="only generations whose prompt matches TEXT")
    @argument("--kind", choices=("image", "edit", "speech", "chat", "video"), default=None, help="only this kind")
    @argument("--model", metavar="MODEL", default=None, help="only this model")
    @line_magic
    def omni_history(self, line: str) -> Any:
        """The last generations (newest first) as a table with thumbnails; the twin is ``vomni_nb.history()``.

        Examples::

            %omni_history
            %omni_history -n 5 --search lighthouse --kind image
        """
        kwargs, quiet = history_call(line)
        from vomni_nb._history import history
        from vomni_nb.errors import VomniError

        try:
            table = history(**kwargs)
        except VomniError as exc:
            raise short_error(exc) from None
        return None if quiet else table

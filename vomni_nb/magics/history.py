"""``%omni_history`` (the last generations as a table) and ``%omni_rerun ID`` (one of them sent again),
thin magics over the twins :func:`vomni_nb.history` and :func:`vomni_nb.rerun`. Both read the history of
``%config VomniMagics.history_path`` when it is set, else the default one."""

from __future__ import annotations

import keyword
import os
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from vomni_nb.magics._common import (
    MagicCall,
    Settings,
    VomniMagics,
    one_value,
    parse_line,
    reading_store,
    run_generation,
    split_quiet,
)

__all__ = ["HistoryMagics", "load_ipython_extension", "history_call", "rerun_call"]


def history_call(line: str, settings: Settings | None = None) -> tuple[dict[str, Any], bool]:
    """(the keyword arguments of ``vomni_nb.history``, whether a trailing ``;`` silences it)."""
    line, quiet = split_quiet(line)
    args = parse_line(HistoryMagics.omni_history, line)
    kwargs = {"n": args.n, "search": args.search, "kind": args.kind, "model": args.model}
    store = reading_store(settings) if settings is not None else None
    return ({**kwargs, "store": store} if store is not None else kwargs), quiet


def rerun_call(line: str, settings: Settings) -> MagicCall:
    """The twin call ``%omni_rerun LINE`` asks for (pure but for the history's existence): a UsageError for
    a SOURCE that is neither a history id nor a file, before anything is sent."""
    from vomni_nb._history.sources import parse_history_id

    line, quiet = split_quiet(line)
    args = parse_line(HistoryMagics.omni_rerun, line)
    source = args.source.strip()
    if parse_history_id(source) is None and not os.path.isfile(os.path.expanduser(source)):
        raise UsageError(f"%omni_rerun {source!r}: give a history id (12 or #12, from %omni_history) or a file "
                         "vomni_nb saved (a PNG carrying its recipe, or a file with its .json beside it).")
    if args.out is not None and (not args.out.isidentifier() or keyword.iskeyword(args.out)):
        raise UsageError(f"--out takes a variable name; {args.out!r} is not one.")
    # Not the default server: the recording names its model, whose server the twin finds.
    kwargs: dict[str, Any] = {"id_or_path": source, "server": one_value("--server", args.server)}
    store = reading_store(settings)
    if store is not None:
        kwargs["store"] = store
    return MagicCall("vomni_nb._history.replay:rerun", kwargs, out=args.out, quiet=quiet,
                     waiting=f"◔ rerunning {source} …")


@magics_class
class HistoryMagics(VomniMagics):
    """``%omni_history`` and ``%omni_rerun`` (``%load_ext vomni_nb``)."""

    @no_var_expand
    @magic_arguments()
    @argument("-n", type=int, default=20, help="how many rows (default 20)")
    @argument("--search", metavar="TEXT", default=None, help="only generations whose prompt matches TEXT")
    @argument("--kind", choices=("image", "edit", "speech", "chat", "video"), default=None, help="only this kind")
    @argument("--model", metavar="MODEL", default=None, help="only this model")
    @line_magic
    def omni_history(self, line: str) -> Any:
        """The last generations (newest first) as a table with thumbnails; the twin is ``vomni_nb.history()``.

        Each row's id is what ``%omni_rerun ID``, ``%%omni_edit ID`` and ``--image ID`` / ``--audio ID``
        take. The history is ``%config VomniMagics.history_path`` when set, else the default one.

        Examples::

            %omni_history
            %omni_history -n 5 --search lighthouse --kind image
        """
        kwargs, quiet = history_call(line, self.settings())
        from vomni_nb._history import history
        from vomni_nb.errors import VomniError

        try:
            table = history(**kwargs)
        except VomniError as exc:
            raise exc from None
        return None if quiet else table

    @no_var_expand
    @magic_arguments()
    @argument("source", metavar="ID|FILE", help="a history id (12, #12) or a file vomni_nb saved")
    @argument("--server", metavar="NAME|URL", default=None,
              help="where to send it (default: this kernel's server for the recorded model, else the recorded URL)")
    @argument("--out", metavar="VAR", default=None, help="store the Rerun (.result, .identical, .note) in VAR")
    @line_magic
    def omni_rerun(self, line: str) -> None:
        """Send a recorded generation again and show the new result under one line saying whether it is
        byte-identical to the original; the twin is ``vomni_nb.rerun(id_or_path)``.

        ID is a history id from ``%omni_history`` (``12`` or ``#12``); FILE a file vomni_nb saved (a PNG
        carrying its recipe, or a speech/video file with its ``.json`` beside it). The same call goes to
        the server this kernel has for the recorded model (``--server`` picks another), and the new result
        is recorded too. A trailing ``;`` shows nothing.

        Examples::

            %omni_rerun 12
            %omni_rerun outputs/image-seed7.png --server http://gpu-box:8091 --out again
        """
        run_generation(self.shell, rerun_call(line, self.settings()))


def load_ipython_extension(ipython: Any) -> None:
    """IPython calls this the first time one of these magics is used (``vomni_nb.magics`` declares them lazily)."""
    from vomni_nb.magics import add_family

    add_family(ipython, HistoryMagics)

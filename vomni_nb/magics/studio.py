"""``%omni_studio [PROMPT]``: the Studio widget (prompt iteration on an image server), a thin magic over
:class:`vomni_nb.widgets.Studio`. The magic's defaults (size, steps, guidance, server, history path) are
the generating magics' settings; the Studio itself checks the values (a UsageError here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from IPython.core.magic import line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from vomni_nb.magics._common import (
    Settings,
    VomniMagics,
    fill_prompt,
    number,
    one_value,
    parse_line,
    usage_errors,
)

__all__ = ["StudioMagics", "load_ipython_extension", "studio_call"]


def studio_call(line: str, namespace: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``Studio(...)`` that ``%omni_studio LINE`` asks for (pure; a UsageError for
    bad input, before any widget or request)."""
    args = parse_line(StudioMagics.omni_studio, line)
    kwargs: dict[str, Any] = {"prompt": fill_prompt(" ".join(args.prompt), namespace).strip()}
    size = one_value("--size", args.size) or settings.default_size
    steps = number("--steps", one_value("--steps", args.steps), int) if args.steps is not None \
        else settings.default_steps
    guidance = number("--guidance", one_value("--guidance", args.guidance), float) if args.guidance is not None \
        else settings.default_guidance
    chosen = {"size": size, "steps": steps, "guidance": guidance,
              "seed": number("--seed", one_value("--seed", args.seed), int),
              "count": number("--count", args.count, int) if args.count is not None else None,
              "server": one_value("--server", args.server) or settings.default_server,
              "save_dir": args.save_dir}
    kwargs.update({key: value for key, value in chosen.items() if value is not None})
    if not settings.history:  # %config VomniMagics.history = False (or VOMNI_HISTORY=off): record nothing
        kwargs["store"] = False
    elif settings.history_path:
        from vomni_nb._twins import history_setting

        # Opened (made when new): the Studio records into it. Compared with False, not by truth: an empty
        # store has no entries, so it is falsy, and the Studio would record into the default one instead.
        store = history_setting(settings.history_path)
        if store is not False:
            kwargs["store"] = store
    return kwargs


@magics_class
class StudioMagics(VomniMagics):
    """``%omni_studio`` (``%load_ext vomni_nb``)."""

    @no_var_expand
    @magic_arguments()
    @argument("prompt", nargs="*", metavar="PROMPT", help="the first prompt (optional; {name} is filled)")
    @argument("--size", metavar="WxH", default=None, help="image size (default: %%config VomniMagics.default_size)")
    @argument("--steps", metavar="N", default=None, help="denoising steps, 1-200")
    @argument("--guidance", metavar="G", default=None, help="guidance (CFG) scale, 0-20")
    @argument("--seed", metavar="S", default=None, help="a locked seed (default: a new one each run)")
    @argument("--count", metavar="N", default=None, help="images per Generate")
    @argument("--server", metavar="NAME|URL", default=None, help="the image server (default: the manager's)")
    @argument("--save-dir", metavar="DIR", default=None, help="where Save writes (default outputs)")
    @line_magic
    def omni_studio(self, line: str) -> Any:
        """A Studio: a form (prompt, negative prompt, size, steps, guidance, seed, count, server) with
        Generate and Cancel, its results and a strip of past ones from the history; the twin is
        ``vomni_nb.Studio(prompt, size=..., ...)`` (from code: ``await studio.generate(prompt=...)``).

        Its results are recorded in the history (``%config VomniMagics.history_path`` when set), unless
        ``%config VomniMagics.history = False``; Pin shows one as a static output, which is what a saved
        notebook keeps. Defaults are the generating
        magics' settings (``%config VomniMagics.default_size`` ...).

        Examples::

            %omni_studio a lighthouse at dusk
            studio = %omni_studio --size 512x512 --steps 8 --server img
        """
        kwargs = studio_call(line, self.user_ns, self.settings())
        from vomni_nb.errors import VomniError
        from vomni_nb.widgets import Studio

        try:
            with usage_errors():
                return Studio(**kwargs)
        except VomniError as exc:
            raise exc from None


def load_ipython_extension(ipython: Any) -> None:
    """IPython calls this the first time one of these magics is used (``vomni_nb.magics`` declares them lazily)."""
    from vomni_nb.magics import add_family

    add_family(ipython, StudioMagics)

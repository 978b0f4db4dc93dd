"""``%%omni_edit SOURCE``: the cell body is the instruction; the edited picture appears below it.

SOURCE is a variable holding a result (``pic``, ``grid.images[0]`` or ``batch[1]``), a history id
(``#12`` or ``12``: that entry's image, read from the history store), a URL or a file path.
The magic parses (:func:`edit_call`, pure), calls the twin :func:`vomni_nb.edit` and shows the result
in place of its wait line.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from vomni_nb.magics._common import (
    MagicCall,
    Settings,
    VomniMagics,
    common_arguments,
    fill_prompt,
    generation_flags,
    number,
    one_value,
    parse_line,
    run_generation,
    split_quiet,
    usage_errors,
)

__all__ = ["EditMagics", "load_ipython_extension", "edit_call", "resolve_source"]


def resolve_source(text: str, namespace: Mapping[str, Any]) -> Any:
    """SOURCE as the twin takes it: a variable (``pic``, ``batch[1]``, ``grid.images[0]``), a history id
    or a URL (kept for the twin to read), or an existing file path; a UsageError that says which of them
    it tried."""
    from vomni_nb._sources import is_history_id, is_url

    head = text.split(".")[0].split("[")[0]
    if head.isidentifier() and head in namespace:
        try:
            value, _ = string.Formatter().get_field(text, (), namespace)
        except (KeyError, AttributeError, IndexError, TypeError, ValueError) as exc:
            raise UsageError(f"SOURCE {text!r}: {exc}.") from None
        return value
    if is_history_id(text) or is_url(text):
        return text.strip()
    path = Path(text).expanduser()
    try:
        found = path.is_file()
    except OSError:  # a name too long for the file system (ENAMETOOLONG) is no file either
        found = False
    if found:
        return str(path)
    raise UsageError(f"SOURCE {text!r} is neither a variable nor a file (no such file: {str(path)!r}). Give a result "
                     "variable (pic, batch[0]), a history id (#12), a URL or the path of an image.")


def edit_call(line: str, cell: str, namespace: Mapping[str, Any], settings: Settings) -> MagicCall:
    """The twin call ``%%omni_edit LINE`` + ``cell`` asks for (pure: no request, no display)."""
    line, quiet = split_quiet(line)
    args = parse_line(EditMagics.omni_edit, line)
    prompt = fill_prompt(cell, namespace).strip()
    if not prompt:
        raise UsageError("The cell is empty: write the instruction in the cell, below the %%omni_edit line.")
    source = resolve_source(args.source, namespace)
    size = one_value("--size", args.size) or "auto"
    kwargs: dict[str, Any] = {
        "source": source,
        "prompt": prompt,
        "size": size,
        "steps": number("--steps", one_value("--steps", args.steps), int) if args.steps is not None
        else settings.default_steps,
        "guidance": number("--guidance", one_value("--guidance", args.guidance), float) if args.guidance is not None
        else settings.default_guidance,
        "seed": number("--seed", one_value("--seed", args.seed), int),
        "n": number("--n", one_value("--n", args.n) or "1", int),
        "negative": args.negative,
        "format": args.format or settings.default_format,
        **common_arguments(args, settings),
    }
    for flag in ("model", "server"):
        one_value(f"--{flag}", kwargs[flag])
    from vomni_nb.generation import check_edit_source, check_image_options

    with usage_errors():
        check_image_options(size=None if size == "auto" else size, steps=kwargs["steps"],
                            guidance=kwargs["guidance"], seed=kwargs["seed"], n=kwargs["n"], format=kwargs["format"])
        check_edit_source(source)
    return MagicCall("vomni_nb.generation:edit", kwargs, out=args.out, quiet=quiet)


@magics_class
class EditMagics(VomniMagics):
    """``%%omni_edit`` (``%load_ext vomni_nb``)."""

    @no_var_expand
    @magic_arguments()
    @argument("source", metavar="SOURCE", help="the image: a result variable (pic, batch[0]), a history id (#12), "
                                                "a URL or a file path")
    @argument("--size", metavar="WxH|auto", default=None, help="output size (default auto: the input's size)")
    @argument("--steps", metavar="N", default=None, help="denoising steps, 1-200")
    @argument("--guidance", metavar="G", default=None, help="guidance (CFG) scale, 0-20")
    @argument("--seed", metavar="S", default=None, help="seed (default: chosen for you, and recorded)")
    @argument("--n", metavar="N", default="1", help="images from one request, 1-10")
    @argument("--negative", metavar="TEXT", default=None, help="what to keep out of the picture")
    @argument("--format", metavar="png|jpeg|webp", default=None, help="image file format (default png)")
    @generation_flags
    @cell_magic
    def omni_edit(self, line: str, cell: str) -> None:
        """Edit an image following the instruction in the cell body, on the server whose model edits images.

        SOURCE is a result in a variable (``pic``, ``batch[0]``, ``grid.images[3]``), a history id (``#12`` or
        ``12``, as ``%omni_history`` lists them), a URL or an image file. The
        instruction may use ``{name}`` like %%omni_image's prompt. ``--size auto`` (the default) keeps the
        input's size. The Python twin is ``vomni_nb.edit(source, instruction, ...)``.

        Examples::

            %%omni_edit pic
            make it night, with the lighthouse lit

            %%omni_edit photos/cat.png --seed 3 --out night_cat
            the same cat, under moonlight
        """
        call = edit_call(line, cell, self.user_ns, self.settings())
        run_generation(self.shell, call)


def load_ipython_extension(ipython: Any) -> None:
    """IPython calls this the first time one of these magics is used (``vomni_nb.magics`` declares them lazily)."""
    from vomni_nb.magics import add_family

    add_family(ipython, EditMagics)

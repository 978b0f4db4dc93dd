"""``%%omni_image``: the cell body is the prompt; the picture appears below it.

The magic parses (:func:`image_call`, pure), calls the twin :func:`vomni_nb.image`, and shows the
result in place of its wait line (:func:`~vomni_nb.magics._common.run_generation`).
"""

from __future__ import annotations

from collections.abc import Mapping
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

__all__ = ["ImageMagics", "load_ipython_extension", "image_call"]


_SWEPT = ("seed", "guidance", "steps", "size", "model", "server")


def _flag_order(line: str) -> list[str]:
    """The flags of ``line`` in the order they appear (``--seed=3`` counts as ``--seed``)."""
    import shlex

    return [word[2:].split("=")[0] for word in shlex.split(line) if word.startswith("--")]


def _sweep_axes(line: str, args: Any, settings: Settings) -> list[tuple[str, list[Any]]]:
    """The varying flags of the line, in line order (X first, then Y): each a (name, values) pair."""
    from vomni_nb.sweeps import parse_values

    found = []
    for name in dict.fromkeys(flag for flag in _flag_order(line) if flag in _SWEPT):
        text = getattr(args, name)
        if text is not None and ("," in text or ".." in text):
            with usage_errors():
                found.append((name, parse_values(name, text)))
    if len(found) > 2:
        flags = ", ".join(f"--{name}" for name, _ in found)
        raise UsageError(f"{len(found)} varying flags ({flags}): a grid has two axes, X (the first) and Y (the "
                         "second). Give the others one value each.")
    return found


def image_call(line: str, cell: str, namespace: Mapping[str, Any], settings: Settings) -> MagicCall:
    """The twin call ``%%omni_image LINE`` + ``cell`` asks for (pure: no request, no display).

    One value per flag calls :func:`vomni_nb.image`; a list (``1,4,9``) or a range (``1..8``) on up to
    two of --seed, --guidance, --steps, --size, --model/--server calls :func:`vomni_nb.sweep`, with X
    the first varying flag on the line and Y the second. Every bad input is a UsageError here: an
    unknown flag, a bad size, steps out of range, an empty prompt, an unknown ``{name}``, a list where
    one value is needed, a third varying flag.
    """
    line, quiet = split_quiet(line)
    args = parse_line(ImageMagics.omni_image, line)
    prompt = fill_prompt(cell, namespace).strip()
    if not prompt:
        raise UsageError("The cell is empty: write the prompt in the cell, below the %%omni_image line.")
    axes = _sweep_axes(line, args, settings)
    swept = {name for name, _ in axes}
    single = {name: (None if name in swept else one_value(f"--{name}", getattr(args, name))) for name in _SWEPT}
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "size": single["size"] or (None if "size" in swept else settings.default_size),
        "steps": number("--steps", single["steps"], int) if single["steps"] is not None
        else (None if "steps" in swept else settings.default_steps),
        "guidance": number("--guidance", single["guidance"], float) if single["guidance"] is not None
        else (None if "guidance" in swept else settings.default_guidance),
        "seed": number("--seed", single["seed"], int) if single["seed"] is not None else None,
        "n": number("--n", one_value("--n", args.n) or "1", int),
        "negative": args.negative,
        "format": args.format or settings.default_format,
        "via": args.via,
        **common_arguments(args, settings),
    }
    if swept & {"model", "server"}:
        kwargs["model" if "model" in swept else "server"] = None
    from vomni_nb.generation import check_image_options

    with usage_errors():
        check_image_options(**{key: kwargs[key] for key in ("size", "steps", "guidance", "seed", "n", "format",
                                                              "via")})
    if not axes:
        return MagicCall("vomni_nb.generation:image", kwargs, out=args.out, quiet=quiet)
    concurrency = number("--concurrency", args.concurrency, int) if args.concurrency else settings.concurrency
    kwargs.update(x=axes[0], y=axes[1] if len(axes) > 1 else None, concurrency=concurrency)
    from vomni_nb.sweeps import make_axis

    with usage_errors():
        for name, values in axes:
            make_axis(name, values)
        if concurrency < 1:
            raise UsageError(f"--concurrency takes a whole number of at least 1; got {concurrency}.")
    return MagicCall("vomni_nb.sweeps:sweep", kwargs, out=args.out, quiet=quiet)


@magics_class
class ImageMagics(VomniMagics):
    """``%%omni_image`` (``%load_ext vomni_nb``)."""

    @no_var_expand
    @magic_arguments()
    @argument("--size", metavar="WxH", default=None, help="image size, e.g. 512x512, or a list 512x512,768x512")
    @argument("--steps", metavar="N", default=None, help="denoising steps, 1-200, or a list/range to sweep")
    @argument("--guidance", metavar="G", default=None, help="guidance (CFG) scale, 0-20, or a list/range to sweep")
    @argument("--seed", metavar="S", default=None,
              help="seed (default: chosen for you, and recorded), or a list 1,4,9 / a range 1..8 to sweep")
    @argument("--n", metavar="N", default="1", help="images from one request, 1-10")
    @argument("--negative", metavar="TEXT", default=None, help="what to keep out of the picture")
    @argument("--format", metavar="png|jpeg|webp", default=None, help="image file format (default png)")
    @argument("--via", choices=("images", "chat"), default="images",
              help="the endpoint: /v1/images/generations (default) or chat completions")
    @argument("--concurrency", metavar="N", default=None,
              help="a sweep's requests at once per server (default 4, %%config VomniMagics.concurrency)")
    @generation_flags
    @cell_magic
    def omni_image(self, line: str, cell: str) -> None:
        """Make an image (or a grid of them) from the prompt in the cell body, on the server whose model makes images.

        The cell body is the prompt; ``{name}`` (``{name.attr}``, ``{name[0]}``) is filled from your
        variables, ``{{name}}`` keeps the braces; ``$`` and other braces are left alone. The picture
        replaces the status line below the cell, with its recipe (model, server, every parameter, the
        seed used, timings) in the output's ``vomni_nb`` metadata. A trailing ``;`` on the magic line
        shows nothing. Defaults: ``%config VomniMagics.default_size = "512x512"`` (also default_steps,
        default_guidance, default_format, default_server), or the environment (VOMNI_DEFAULT_SIZE, ...).
        The Python twin is ``vomni_nb.image(prompt, size=..., seed=...)``.

        Sweeps: a list (``--seed 1,4,9``) or a range (``--seed 1..8``, ``--guidance 2..8:2``) on --seed,
        --guidance, --steps, --size or --model/--server makes a labelled grid; two such flags an X/Y plot
        (X the first on the line, Y the second). The requests run ``--concurrency`` at a time per server,
        spread over every replica of the model; cells fill in as they arrive, a failed one shows its error
        in place. The twin is ``vomni_nb.sweep(prompt, x=("seed", [1, 2]), y=("guidance", [2, 4, 8]))``.

        Examples::

            %%omni_image --size 512x512 --seed 7
            a lighthouse at dusk, {style}

            %%omni_image --seed 1..4 --guidance 2,4,8
            a lighthouse at dusk

            %%omni_image --model Tongyi-MAI/Z-Image-Turbo --steps 8 --out pic --save out/
            a red bicycle
        """
        call = image_call(line, cell, self.user_ns, self.settings())
        run_generation(self.shell, call)


def load_ipython_extension(ipython: Any) -> None:
    """IPython calls this the first time one of these magics is used (``vomni_nb.magics`` declares them lazily)."""
    from vomni_nb.magics import add_family

    add_family(ipython, ImageMagics)

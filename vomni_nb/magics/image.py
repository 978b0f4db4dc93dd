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

__all__ = ["ImageMagics", "image_call"]


def image_call(line: str, cell: str, namespace: Mapping[str, Any], settings: Settings) -> MagicCall:
    """The twin call ``%%omni_image LINE`` + ``cell`` asks for (pure: no request, no display).

    Every bad input is a UsageError here: an unknown flag, a bad size, steps out of range, an empty
    prompt, an unknown ``{name}``, a list where one value is needed.
    """
    line, quiet = split_quiet(line)
    args = parse_line(ImageMagics.omni_image, line)
    prompt = fill_prompt(cell, namespace).strip()
    if not prompt:
        raise UsageError("The cell is empty: write the prompt in the cell, below the %%omni_image line.")
    size = one_value("--size", args.size) or settings.default_size
    steps_text, guidance_text, seed_text = (one_value(f"--{name}", getattr(args, name))
                                            for name in ("steps", "guidance", "seed"))
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "size": size,
        "steps": number("--steps", steps_text, int) if steps_text is not None else settings.default_steps,
        "guidance": number("--guidance", guidance_text, float) if guidance_text is not None
        else settings.default_guidance,
        "seed": number("--seed", seed_text, int) if seed_text is not None else None,
        "n": number("--n", one_value("--n", args.n) or "1", int),
        "negative": args.negative,
        "format": args.format or settings.default_format,
        "via": args.via,
        **common_arguments(args, settings),
    }
    for flag in ("model", "server"):
        one_value(f"--{flag}", kwargs[flag])
    from vomni_nb.generation import check_image_options

    with usage_errors():
        check_image_options(**{key: kwargs[key] for key in ("size", "steps", "guidance", "seed", "n", "format",
                                                              "via")})
    return MagicCall("vomni_nb.generation:image", kwargs, out=args.out, quiet=quiet)


@magics_class
class ImageMagics(VomniMagics):
    """``%%omni_image`` (``%load_ext vomni_nb``)."""

    @no_var_expand
    @magic_arguments()
    @argument("--size", metavar="WxH", default=None, help="image size, e.g. 512x512 (default: the server's)")
    @argument("--steps", metavar="N", default=None, help="denoising steps, 1-200")
    @argument("--guidance", metavar="G", default=None, help="guidance (CFG) scale, 0-20")
    @argument("--seed", metavar="S", default=None, help="seed (default: chosen for you, and recorded)")
    @argument("--n", metavar="N", default="1", help="images from one request, 1-10")
    @argument("--negative", metavar="TEXT", default=None, help="what to keep out of the picture")
    @argument("--format", metavar="png|jpeg|webp", default=None, help="image file format (default png)")
    @argument("--via", choices=("images", "chat"), default="images",
              help="the endpoint: /v1/images/generations (default) or chat completions")
    @generation_flags
    @cell_magic
    def omni_image(self, line: str, cell: str) -> None:
        """Make an image from the prompt in the cell body, on the server whose model makes images.

        The cell body is the prompt; ``{name}`` (``{name.attr}``, ``{name[0]}``) is filled from your
        variables, ``{{name}}`` keeps the braces; ``$`` and other braces are left alone. The picture
        replaces the status line below the cell, with its recipe (model, server, every parameter, the
        seed used, timings) in the output's ``vomni_nb`` metadata. A trailing ``;`` on the magic line
        shows nothing. Defaults: ``%config VomniMagics.default_size = "512x512"`` (also default_steps,
        default_guidance, default_format, default_server), or the environment (VOMNI_DEFAULT_SIZE, ...).
        The Python twin is ``vomni_nb.image(prompt, size=..., seed=...)``.

        Examples::

            %%omni_image --size 512x512 --seed 7
            a lighthouse at dusk, {style}

            %%omni_image --model Tongyi-MAI/Z-Image-Turbo --steps 8 --out pic --save out/
            a red bicycle
        """
        call = image_call(line, cell, self.user_ns, self.settings())
        run_generation(self.shell, call)

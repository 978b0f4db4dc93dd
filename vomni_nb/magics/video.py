"""``%%omni_video``: the cell body is the prompt; a status line follows the job, then the clip plays below.

The magic parses (:func:`video_call`, pure), calls the twin :func:`vomni_nb.video` (whose status line
says the job's state, progress and time), and shows the result in place of that line
(:func:`~vomni_nb.magics._common.run_generation`). Ctrl-C cancels the job on the server.
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
    one_value,
    parse_line,
    run_generation,
    split_quiet,
    usage_errors,
)
from vomni_nb.magics._media import optional_number, parse_source

__all__ = ["VideoMagics", "load_ipython_extension", "video_call"]


def video_call(line: str, cell: str, namespace: Mapping[str, Any], settings: Settings) -> MagicCall:
    """The twin call ``%%omni_video LINE`` + ``cell`` asks for (pure: no request, no display).

    Every bad input is a UsageError here: an unknown flag, a bad size, seconds, fps, frames, steps, guidance
    or seed, a list where one value is needed, a first frame that does not exist, an empty prompt, an
    unknown ``{name}``.
    """
    line, quiet = split_quiet(line)
    args = parse_line(VideoMagics.omni_video, line)
    prompt = fill_prompt(cell, namespace).strip()
    if not prompt:
        raise UsageError("The cell is empty: write the prompt in the cell, below the %%omni_video line.")
    common = common_arguments(args, settings)
    for flag in ("model", "server"):
        one_value(f"--{flag}", common[flag])
    values = {name: one_value(f"--{name}", getattr(args, name))
              for name in ("size", "seconds", "fps", "frames", "steps", "guidance", "seed")}
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "size": values["size"],
        "seconds": optional_number("--seconds", values["seconds"], int),
        "fps": optional_number("--fps", values["fps"], float),
        "frames": optional_number("--frames", values["frames"], int),
        "steps": optional_number("--steps", values["steps"], int),
        "guidance": optional_number("--guidance", values["guidance"], float),
        "seed": optional_number("--seed", values["seed"], int),
        "negative": args.negative,
        "image": parse_source("--image", args.image, namespace, kind="image") if args.image is not None else None,
        **common,
    }
    from vomni_nb.videos import check_video_options

    with usage_errors():
        check_video_options(**{key: kwargs[key] for key in ("size", "seconds", "fps", "frames", "steps", "guidance",
                                                              "seed")})
    return MagicCall("vomni_nb.videos:video", kwargs, out=args.out, quiet=quiet)


@magics_class
class VideoMagics(VomniMagics):
    """``%%omni_video`` (``%load_ext vomni_nb``)."""

    @no_var_expand
    @magic_arguments()
    @argument("--size", metavar="WxH", default=None, help="frame size, e.g. 832x480 (the model rounds it to its grid)")
    @argument("--seconds", metavar="N", default=None, help="length in seconds (or --frames)")
    @argument("--fps", metavar="N", default=None, help="frames per second")
    @argument("--frames", metavar="N", default=None, help="number of frames (instead of --seconds)")
    @argument("--steps", metavar="N", default=None, help="denoising steps, 1-200")
    @argument("--guidance", metavar="G", default=None, help="guidance (CFG) scale, 0-20")
    @argument("--negative", metavar="TEXT", default=None, help="what to keep out of the clip")
    @argument("--seed", metavar="S", default=None, help="seed (default: chosen for you, and recorded)")
    @argument("--image", metavar="SRC", default=None,
              help="a first frame: a path, a URL, a result variable or a history id (image to video)")
    @generation_flags
    @cell_magic
    def omni_video(self, line: str, cell: str) -> None:
        """Make a video clip from the prompt in the cell body, on the server whose model makes videos.

        The server runs it as a job; a status line says its state (queued, in progress, with its progress)
        and the time so far, and the clip replaces it: a static ``<video controls>`` player with
        ``text/plain`` and the recipe (model, server, every parameter, the seed used, the job's frames and
        timings) in the output's ``vomni_nb`` metadata. Ctrl-C (interrupt the kernel) cancels the job on the
        server. ``--image`` starts from a picture (image to video). ``{name}`` in the prompt is filled from
        your variables. The Python twin is ``vomni_nb.video(prompt, size=..., seconds=...)``.

        Examples::

            %%omni_video --size 832x480 --seconds 2 --fps 8 --seed 3
            waves rolling onto a beach at dusk

            %%omni_video --image pic --out clip
            the lighthouse beam sweeping through fog
        """
        call = video_call(line, cell, self.user_ns, self.settings())
        run_generation(self.shell, call)


def load_ipython_extension(ipython: Any) -> None:
    """IPython calls this the first time one of these magics is used (``vomni_nb.magics`` declares them lazily)."""
    from vomni_nb.magics import add_family

    add_family(ipython, VideoMagics)

"""The image twins: ``vomni_nb.image`` and ``vomni_nb.edit``, the plain functions behind ``%%omni_image``
and ``%%omni_edit``.

Each checks every argument before anything is sent, finds its server (:mod:`vomni_nb.routing`: without
``model``/``server``, the server whose model does the task), sends one request with a live status line in
a Jupyter kernel, saves the result into ``save`` (never overwriting) and returns it. Nothing here
displays a result or needs IPython (see :mod:`vomni_nb._twins` for the shape every twin follows).
Several seeds or values at once are a sweep: :func:`vomni_nb.sweep`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vomni_nb._twins import Log, Status, call, either_spelling, resolve_target, save_result
from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol.validate import (
    ImageFormat,
    ImageRoute,
    check_float,
    check_int,
    check_prompt,
    check_seed,
    format_size,
    image_output_format,
)

if TYPE_CHECKING:
    from vomni_nb._files import PathLike
    from vomni_nb.results import ImageBatch, ImageResult

__all__ = ["image", "edit", "check_image_options", "check_edit_source", "describe_image", "one_image"]

_SWEEPABLE = ("size", "steps", "guidance", "seed")


def check_image_options(*, size: Any = None, steps: Any = None, guidance: Any = None, seed: Any = None,
                        n: Any = 1, format: Any = "png", via: Any = None) -> dict[str, Any]:
    """The diffusion settings checked (InvalidRequestError with the reason), as ``OmniClient.image`` takes them."""
    given = {"size": size, "steps": steps, "guidance": guidance, "seed": seed}
    for name in _SWEEPABLE:
        value = given[name]
        if isinstance(value, (list, range, set)) or (isinstance(value, tuple) and name != "size"):
            raise InvalidRequestError(f"{name} takes one value here; got {value!r}. For several values (a grid) use "
                                      f"vomni_nb.sweep(prompt, x=({name!r}, [...])).")
    options: dict[str, Any] = {
        "size": format_size(size) if size is not None else None,
        "steps": check_int("steps", steps, 1, 200) if steps is not None else None,
        "guidance": check_float("guidance", guidance, 0.0, 20.0) if guidance is not None else None,
        "seed": check_seed(seed) if seed is not None else None,
        "n": check_int("n", n, 1, 10),
        "output_format": image_output_format(format),
    }
    if via is not None:
        if via not in ("images", "chat"):
            raise InvalidRequestError(f"via must be 'images' or 'chat'; got {via!r}.")
        if via == "chat" and options["output_format"] != "png":
            raise InvalidRequestError("Images through chat are always PNG: drop the format or use via='images'.")
        options["via"] = via
    return {key: value for key, value in options.items() if value is not None}


def describe_image(options: Mapping[str, Any]) -> str:
    """What a status line says is being made: ``an image 512x512`` / ``3 images``."""
    count = options.get("n", 1)
    what = "an image" if count == 1 else f"{count} images"
    return what + (f" {options['size']}" if options.get("size") else "")


def image(
    prompt: str,
    *,
    model: str | None = None,
    server: Any = None,
    size: str | tuple[int, int] | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int | None = None,
    n: int = 1,
    negative: str | None = None,
    format: ImageFormat | None = None,
    via: ImageRoute = "images",
    output_format: ImageFormat | None = None,
    save: PathLike | None = None,
    log: Log = True,
    timeout: float | None = None,
    extra: Mapping[str, Any] | None = None,
    status: Status = None,
) -> ImageResult | ImageBatch:
    """Text to image on the right server: an ImageResult (an ImageBatch when ``n`` > 1).

    ``model`` / ``server`` (a Server, a name from ``%omni_server list``, or a URL) pick the server;
    without them it is the one whose model makes images (:mod:`vomni_nb.routing`). ``size``
    "WIDTHxHEIGHT"; ``steps`` 1-200; ``guidance`` 0-20; ``seed`` (chosen and recorded when not given);
    ``n`` images from one request (1-10); ``negative`` what to avoid; ``format`` png (the default), jpeg
    or webp; ``via="chat"`` sends it through chat completions. ``save``: a folder to write the files into
    (never overwriting); ``log=False`` keeps it out of the history (``log=`` a store or a path records
    there); ``timeout`` seconds to wait for the answer; ``extra`` adds wire fields; ``status`` the live wait
    line (``False``: none). Every argument is checked before anything is sent.

    ``vomni_nb.image(**result.recipe)`` makes the same image again (same seed, same bytes): a recipe uses
    the client's names, so ``output_format`` is taken as another name for ``format`` (not both).
    """
    check_prompt(prompt)
    chosen = either_spelling("format", format, "output_format", output_format)
    options = check_image_options(size=size, steps=steps, guidance=guidance, seed=seed, n=n, format=chosen or "png",
                                  via=via)
    if negative is not None:
        options["negative"] = negative
    if extra:
        options["extra"] = dict(extra)
    target = resolve_target("image", model=model, server=server)
    result: ImageResult | ImageBatch = call("image", target, lambda client: client.image(prompt, **options),
                                            what=describe_image(options), status=status, timeout=timeout, log=log)
    save_result(result, save)
    return result


def edit(
    source: Any,
    prompt: str,
    *,
    model: str | None = None,
    server: Any = None,
    size: str | tuple[int, int] | None = "auto",
    steps: int | None = None,
    guidance: float | None = None,
    seed: int | None = None,
    n: int = 1,
    negative: str | None = None,
    format: ImageFormat | None = None,
    output_format: ImageFormat | None = None,
    save: PathLike | None = None,
    log: Log = True,
    timeout: float | None = None,
    extra: Mapping[str, Any] | None = None,
    status: Status = None,
) -> ImageResult | ImageBatch:
    """Edit an image following ``prompt`` on the server whose model edits images.

    ``source``: a file path, an ``http(s)://`` or ``data:`` URL, bytes, a history id (``12``, ``"#12"``:
    that entry's image in the history store), or a result (an ``ImageResult``; an ``ImageBatch`` or grid
    gives its first image only when it holds one). ``size="auto"`` (the default) keeps the input's size;
    the other arguments are :func:`image`'s, so ``vomni_nb.edit(source, **result.recipe)`` repeats an edit
    (a recipe does not hold the input image). The input is read and every argument checked before
    anything is sent.
    """
    from vomni_nb._sources import fetch_source

    check_prompt(prompt, "the instruction")
    checked = check_edit_source(source)
    auto = size is None or size == "auto"
    chosen = either_spelling("format", format, "output_format", output_format)
    options = check_image_options(size=None if auto else size, steps=steps, guidance=guidance, seed=seed, n=n,
                                  format=chosen or "png")
    if negative is not None:
        options["negative"] = negative
    if extra:
        options["extra"] = dict(extra)
    target = resolve_target("edit", model=model, server=server)
    picture = fetch_source(checked, kind="image")  # a history id's stored file, a URL's download
    what = describe_image(options).replace("an image", "an edit", 1).replace("images", "edits", 1)
    result: ImageResult | ImageBatch = call("edit", target, lambda client: client.edit(picture, prompt, **options),
                                            what=what, status=status, timeout=timeout, log=log)
    save_result(result, save)
    return result


def check_edit_source(source: Any) -> Any:
    """The image to edit, checked before anything is sent (a missing file, an unusable object, a batch of
    several); what :func:`vomni_nb._sources.fetch_source` takes. A history id or a URL is read later."""
    from vomni_nb._sources import check_source, is_history_id, is_url
    from vomni_nb.protocol.media import load_media

    checked = check_source(one_image(source), kind="image", name="the image to edit")
    if not (is_history_id(checked) or is_url(checked)):
        load_media(checked, "image/png")
    return checked


def one_image(source: Any) -> Any:
    """A batch or grid of one image is that image; of several, an error saying how to pick one."""
    images = getattr(source, "images", None)
    if images is None or isinstance(source, (bytes, str)):
        return source
    images = tuple(images)
    if len(images) != 1:
        raise InvalidRequestError(f"{type(source).__name__} holds {len(images)} images: pick one, e.g. result[0] "
                                  "(or grid.images[0]).")
    return images[0]

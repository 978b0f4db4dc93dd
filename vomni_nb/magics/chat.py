"""``%%omni_chat``: the cell body is your message; the answer streams in below it, and the conversation
goes on from cell to cell until ``--new``.

The magic parses (:func:`chat_call`, pure) and calls the twin :func:`vomni_nb.chat` (the kernel's default
:class:`~vomni_nb.Conversation`). Streaming (the default), the twin shows the text as it arrives in the
wait line's output and ends it as the static answer itself; with ``--no-stream`` the answer replaces the
wait line (:func:`~vomni_nb.magics._common.run_generation`). The magic always sends the modalities and
the audio format explicitly, so what it asks for does not depend on the client's defaults.
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
from vomni_nb.magics._media import parse_source

__all__ = ["ChatMagics", "load_ipython_extension", "chat_call"]


def chat_call(line: str, cell: str, namespace: Mapping[str, Any], settings: Settings) -> MagicCall:
    """The twin call ``%%omni_chat LINE`` + ``cell`` asks for (pure: no request, no display).

    Every bad input is a UsageError here: an unknown flag, unknown modalities, a voice without audio, a
    media file that does not exist (or a variable that is not media), an empty message, an unknown ``{name}``.
    """
    line, quiet = split_quiet(line)
    args = parse_line(ChatMagics.omni_chat, line)
    prompt = fill_prompt(cell, namespace).strip()
    if not prompt:
        raise UsageError("The cell is empty: write your message in the cell, below the %%omni_chat line.")
    common = common_arguments(args, settings)
    for flag in ("model", "server"):
        one_value(f"--{flag}", common[flag])
    if args.system is not None and not args.system.strip():
        raise UsageError("--system is empty: give the system message's text, or leave the flag out.")
    images = [parse_source("--image", source, namespace, kind="image") for source in args.image or []]
    audio = [parse_source("--audio", source, namespace, kind="audio") for source in args.audio or []]
    from vomni_nb.conversation import check_chat_options

    with usage_errors():
        shape = check_chat_options(modalities=args.modalities, voice=args.voice, stream=args.stream)
    voice = args.voice if args.voice is not None else (settings.default_voice if "audio" in shape["modalities"] else None)
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "new": args.new,
        "images": images,
        "audio": audio,
        "system": args.system,
        "modalities": shape["modalities"],
        "voice": voice,
        "audio_format": shape.get("audio_format"),
        "stream": args.stream,
        **common,
    }
    return MagicCall("vomni_nb.conversation:chat", kwargs, out=args.out, quiet=quiet)


@magics_class
class ChatMagics(VomniMagics):
    """``%%omni_chat`` (``%load_ext vomni_nb``)."""

    @no_var_expand
    @magic_arguments()
    @argument("--system", metavar="TEXT", default=None, help="the system message (from this turn on)")
    @argument("--image", metavar="SRC", action="append", default=None,
              help="attach a picture: a path, a URL, a result variable or a history id (repeat for more)")
    @argument("--audio", metavar="SRC", action="append", default=None,
              help="attach a sound: a path, a URL, a result variable or a history id (repeat for more)")
    @argument("--modalities", metavar="text,audio", default=None,
              help="what to answer with: text (default) or text,audio for a spoken answer too")
    @argument("--voice", metavar="NAME", default=None, help="the speaker of a spoken answer (implies text,audio)")
    @argument("--no-stream", dest="stream", action="store_false",
              help="wait for the whole answer instead of showing it as it arrives")
    @argument("--new", action="store_true", help="start a new conversation with this message")
    @generation_flags
    @cell_magic
    def omni_chat(self, line: str, cell: str) -> None:
        """Chat with the model of the server whose model chats (an omni model): the cell body is your message.

        The answer's text streams into one output below the cell (updated at most ~12 times a second, and
        once more at the end) and ends as a static Markdown answer with its recipe in the output's
        ``vomni_nb`` metadata. ``--modalities text,audio`` (or ``--voice NAME``) adds a spoken answer: it
        plays as it arrives and ends as a static ``<audio controls>`` player (never autoplaying); without
        streaming it comes embedded as MP3. The conversation goes on from cell to cell, each message sent
        with the ones before (as the chat API expects); ``--new`` starts over, ``--system`` sets the system
        message. ``--image``/``--audio`` attach media (a path, URL, result variable or history id). A failed
        or interrupted cell leaves the conversation as it was. ``{name}`` in the message is filled from
        your variables. The Python twins are ``vomni_nb.chat(prompt, ...)`` (this same conversation) and
        ``vomni_nb.Conversation()`` for one of your own.

        Examples::

            %%omni_chat --new --system "Answer in one sentence."
            What is a lighthouse?

            %%omni_chat --image pic --voice ethan
            Describe this picture of {subject}.
        """
        call = chat_call(line, cell, self.user_ns, self.settings())
        run_generation(self.shell, call)


def load_ipython_extension(ipython: Any) -> None:
    """IPython calls this the first time one of these magics is used (``vomni_nb.magics`` declares them lazily)."""
    from vomni_nb.magics import add_family

    add_family(ipython, ChatMagics)

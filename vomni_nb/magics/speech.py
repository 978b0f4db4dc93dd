"""``%%omni_speak`` (the cell body is spoken) and ``%omni_voice`` (a speech server's named voices).

Each magic parses (:func:`speak_call`, :func:`voice_call`: pure), calls its twin (:func:`vomni_nb.speak`,
:func:`vomni_nb.speak_batch`, the voice functions of :mod:`vomni_nb.speech`), and shows the result in
place of its wait line (:func:`~vomni_nb.magics._common.run_generation`). With ``--stream`` the twin plays
the speech as it arrives and leaves the static player itself, so nothing is shown twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import cell_magic, line_magic, magics_class, no_var_expand
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

__all__ = ["SpeechMagics", "load_ipython_extension", "speak_call", "voice_call"]


def speak_call(line: str, cell: str, namespace: Mapping[str, Any], settings: Settings) -> MagicCall:
    """The twin call ``%%omni_speak LINE`` + ``cell`` asks for (pure: no request, no display).

    Every bad input is a UsageError here: an unknown flag, a bad format, speed or seed, ``--stream`` with a
    format or speed the server cannot stream, ``--batch`` with ``--stream`` or ``--seed``, an empty text, an
    unknown ``{name}``.
    """
    line, quiet = split_quiet(line)
    args = parse_line(SpeechMagics.omni_speak, line)
    text = fill_prompt(cell, namespace).strip()
    if not text:
        raise UsageError("The cell is empty: write the text to speak in the cell, below the %%omni_speak line.")
    common = common_arguments(args, settings)
    for flag in ("model", "server"):
        one_value(f"--{flag}", common[flag])
    options: dict[str, Any] = {
        "voice": args.voice if args.voice is not None else settings.default_voice,
        "format": args.format,
        "speed": optional_number("--speed", args.speed, float),
        "instructions": args.instructions,
        "language": args.language,
    }
    seed = optional_number("--seed", one_value("--seed", args.seed), int)
    if args.ref_audio is not None:  # a voice cloned from a sample (Qwen3-TTS -Base checkpoints)
        options["ref_audio"] = parse_source("--ref-audio", args.ref_audio, namespace, kind="audio")
    if args.ref_text is not None:
        options["ref_text"] = args.ref_text
    from vomni_nb.speech import check_speech_options

    if args.batch:
        if args.stream:
            raise UsageError("--batch and --stream do not go together: a batch comes back whole (drop one).")
        if seed is not None:
            raise UsageError("--batch takes no --seed: the server's batch route (/v1/audio/speech/batch) has no seed "
                             "field; drop --batch to speak one seeded utterance, or drop --seed.")
        texts = [item.strip() for item in text.splitlines() if item.strip()]
        with usage_errors():
            check_speech_options(voice=options["voice"], format=options["format"], speed=options["speed"])
        return MagicCall("vomni_nb.speech:speak_batch", {"texts": texts, **options, **common}, out=args.out,
                         quiet=quiet)
    with usage_errors():
        check_speech_options(voice=options["voice"], format=options["format"], speed=options["speed"], seed=seed,
                             stream=args.stream)
    return MagicCall("vomni_nb.speech:speak", {"text": text, **options, "seed": seed, "stream": args.stream,
                                               **common}, out=args.out, quiet=quiet)


_VOICE_USAGE = "%omni_voice list | upload NAME FILE --consent TEXT [--ref-text T] | delete NAME"


def voice_call(line: str, namespace: Mapping[str, Any], settings: Settings) -> MagicCall:
    """The twin call ``%omni_voice LINE`` asks for (pure); a UsageError for a wrong action, a missing
    name, file or consent, or a file that does not exist."""
    args = parse_line(SpeechMagics.omni_voice, line)
    server = args.server if args.server is not None else (settings.default_server if args.model is None else None)
    where = {"model": args.model, "server": server}
    wanted = {"list": 0, "upload": 2, "delete": 1}[args.action]
    if len(args.names) != wanted:
        raise UsageError(f"%omni_voice {args.action} takes {wanted or 'no'} argument{'s' if wanted != 1 else ''} "
                         f"(usage: {_VOICE_USAGE}); got {len(args.names)}.")
    if args.action != "upload" and (args.consent is not None or args.ref_text is not None):
        raise UsageError(f"--consent and --ref-text are for upload, not {args.action}.")
    if args.action == "list":
        return MagicCall("vomni_nb.speech:list_voices", where)
    name = args.names[0]
    if args.action == "delete":
        return MagicCall("vomni_nb.speech:delete_voice", {"name": name, **where}, quiet=True)
    if not args.consent or not args.consent.strip():
        raise UsageError("upload needs --consent TEXT: say how the speaker agreed to have their voice used.")
    sample = parse_source("upload FILE", args.names[1], namespace, kind="audio")
    return MagicCall("vomni_nb.speech:upload_voice", {"name": name, "audio": sample, "consent": args.consent,
                                                      "ref_text": args.ref_text, **where}, quiet=True)


@magics_class
class SpeechMagics(VomniMagics):
    """``%%omni_speak`` and ``%omni_voice`` (``%load_ext vomni_nb``)."""

    @no_var_expand
    @magic_arguments()
    @argument("--voice", metavar="NAME", default=None,
              help="a built-in or uploaded voice (default: %%config VomniMagics.default_voice, else the model's)")
    @argument("--format", metavar="wav|pcm|flac|mp3|opus", default=None,
              help="audio format (default wav; pcm with --stream, which streams only pcm or wav)")
    @argument("--speed", metavar="X", default=None, help="speaking speed, 0.25-4 (1.0 when streaming)")
    @argument("--instructions", metavar="TEXT", default=None, help="a speaking style, e.g. 'slow and warm'")
    @argument("--language", metavar="LANG", default=None, help="the language, e.g. English")
    @argument("--seed", metavar="S", default=None,
              help="seed of the speech model's sampling (the same seed and text speak the same; not with --batch, "
                   "whose route takes none)")
    @argument("--ref-audio", metavar="SRC", default=None,
              help="clone the voice of this sample: a path, URL, result variable or history id (-Base checkpoints)")
    @argument("--ref-text", metavar="TEXT", default=None, help="what the --ref-audio sample says")
    @argument("--stream", action="store_true", help="play it while it is generated (live player, then a static one)")
    @argument("--batch", action="store_true", help="one utterance per line of the cell, shown as a list of players")
    @generation_flags
    @cell_magic
    def omni_speak(self, line: str, cell: str) -> None:
        """Speak the text in the cell body, on the server whose model speaks (a TTS model).

        The cell body is the text; ``{name}`` (``{name.attr}``, ``{name[0]}``) is filled from your
        variables, ``{{name}}`` keeps the braces. The result replaces the status line: a static
        ``<audio controls>`` player (never autoplaying, never looping) with ``text/plain`` and the recipe
        (model, server, voice, every parameter, timings) in the output's ``vomni_nb`` metadata. ``--stream``
        plays it while it is generated (a live player in JupyterLab and Notebook 7, a status line when run
        headless) and ends as the same static player. ``--batch`` speaks each line of the cell as its own
        utterance and shows a list of players (a line that fails shows its error in its place). A trailing
        ``;`` shows nothing more. ``--seed S`` fixes the model's sampling, so the same text and settings
        speak the same audio again (without it the model samples freely; the batch route takes no seed,
        so not with ``--batch``). ``--ref-audio SRC --ref-text T`` clones the voice of a sample (on a
        Qwen3-TTS ``-Base`` checkpoint). Default voice: ``%config VomniMagics.default_voice = "vivian"`` (or
        VOMNI_DEFAULT_VOICE). The Python twins are ``vomni_nb.speak(text, voice=..., stream=...)`` and
        ``vomni_nb.speak_batch(texts, ...)``.

        Examples::

            %%omni_speak --voice vivian --out hello
            Hello {name}, welcome back.

            %%omni_speak --stream --instructions "calm, slow"
            A long story, heard while it is generated.
        """
        call = speak_call(line, cell, self.user_ns, self.settings())
        run_generation(self.shell, call)

    @no_var_expand
    @magic_arguments()
    @argument("action", choices=("list", "upload", "delete"), help="what to do")
    @argument("names", nargs="*", metavar="NAME [FILE]", help="the voice's name (and, for upload, its sample)")
    @argument("--consent", metavar="TEXT", default=None, help="upload: how the speaker agreed to its use (required)")
    @argument("--ref-text", metavar="TEXT", default=None, help="upload: what the sample says")
    @argument("--server", metavar="NAME|URL", default=None, help="the speech server (default: the one whose model "
                                                                 "speaks)")
    @argument("--model", metavar="MODEL", default=None, help="the speech model whose server to use")
    @line_magic
    def omni_voice(self, line: str) -> None:
        """List, upload or delete the named voices of the speech server.

        ``%omni_voice list`` shows a table of built-in and uploaded voices; ``%omni_voice upload NAME FILE
        --consent TEXT [--ref-text T]`` uploads a sample (a path, a URL or a SpeechResult variable; at most
        30 s) as a voice that ``%%omni_speak --voice NAME`` can use; ``%omni_voice delete NAME`` removes an
        uploaded one. The Python twin is the client's ``voices`` (``OmniClient(url).voices.list()``,
        ``.upload(name, file, consent=...)``, ``.delete(name)``), or ``vomni_nb.speech.list_voices()``.

        Examples::

            %omni_voice list
            %omni_voice upload narrator samples/me.wav --consent "recorded myself, 2025-01-05"
            %omni_voice delete narrator
        """
        call = voice_call(line, self.user_ns, self.settings())
        run_generation(self.shell, call)
        if call.quiet:  # upload and delete: the server's answer is a record; one line says what happened
            from vomni_nb.display import show

            name = call.kwargs["name"]
            done = f"uploaded: use it with %%omni_speak --voice {name}" if "upload" in call.twin else "deleted"
            show(f"✓ voice {name!r} {done}")


def load_ipython_extension(ipython: Any) -> None:
    """IPython calls this the first time one of these magics is used (``vomni_nb.magics`` declares them lazily)."""
    from vomni_nb.magics import add_family

    add_family(ipython, SpeechMagics)

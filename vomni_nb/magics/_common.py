"""What every vomni_nb magic shares: the settings, the shared flags, prompt filling, errors, delivery.

A generating magic is four steps, each one function here or in the twin::

    @magics_class
    class SpeechMagics(VomniMagics):                       # every family class subclasses VomniMagics
        @no_var_expand                                     # `$x` and `{}` in the line are ours to read
        @magic_arguments()
        @argument("--voice", default=None, help="...")
        @generation_flags                                  # --model --server --out --save --no-log
        @cell_magic
        def omni_speak(self, line: str, cell: str) -> None:
            \"\"\"The help `%%omni_speak?` prints.\"\"\"
            call = speech_call(line, cell, self.shell.user_ns, self.settings())   # 1. parse: pure
            run_generation(self.shell, call)               # 2-4. twin -> display (or --out), errors short

    def speech_call(line, cell, namespace, settings) -> MagicCall:           # pure, tested without a shell
        line, quiet = split_quiet(line)
        args = parse_line(SpeechMagics.omni_speak, line)   # UsageError for an unknown flag
        prompt = fill_prompt(cell, namespace)              # UsageError for an unknown {name}
        with usage_errors():                               # InvalidRequestError -> UsageError
            ...check every value...
        return MagicCall("vomni_nb.speech:speak", {"text": prompt, ..., **common_arguments(args, settings)},
                         out=args.out, quiet=quiet)

Rules:

1. Settings are traitlets of :class:`VomniMagics`, the base of every family class, so one
   ``%config VomniMagics.default_size = "512x512"`` reaches them all (traitlets applies a class's
   section to its subclasses); ``%config ImageMagics.default_size`` would set one family only. An
   unset setting falls back to its environment variable (:data:`ENVIRONMENT`), then to the built-in
   default. Magics read them through :meth:`VomniMagics.settings` (a frozen :class:`Settings`), so the
   parse functions stay pure.
2. Every bad input is a ``UsageError`` raised before any request: parsing, ``{name}`` filling and the
   checks all happen in the parse function, and the twin checks again for Python callers.
3. Errors from the twin (a ``VomniError``) stay raised, so "Run All" stops, but render as one line of
   cause and one of advice, not a traceback through our internals (:mod:`vomni_nb._tracebacks`; raised
   ``from None``, so no chain of our own exceptions shows either).
4. The result replaces the wait line in the same output (design §6: a static bundle with
   ``text/plain`` and ``vomni_nb`` metadata); ``--out VAR`` also stores it in the user namespace; a
   trailing ``;`` on the magic line shows nothing. The magic returns None (the output is already there).
   Ctrl-C stays a KeyboardInterrupt, shown as one line; a twin that has something to keep (a sweep's
   finished cells) attaches it to the interrupt as ``.partial``, which is shown and stored instead.
5. ``%load_ext vomni_nb`` imports this module, IPython's magic machinery and nothing heavy: the client,
   PIL, sqlite3, ipywidgets and the manager load when a magic first runs (imports inside functions).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import keyword
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class
from IPython.core.magic_arguments import argument
from traitlets import Bool, Float, Int, Unicode, validate

from vomni_nb.errors import InvalidRequestError, VomniError, WrongServerError, redact
from vomni_nb.magics._parsing import fill_prompt, keys_given, number, one_value, parse_line, split_quiet

if TYPE_CHECKING:
    from vomni_nb.display import WaitLine

__all__ = ["VomniMagics", "Settings", "ENVIRONMENT", "MagicCall", "generation_flags", "common_arguments", "parse_line",
           "split_quiet", "keys_given", "number", "one_value", "fill_prompt", "usage_errors", "run_generation",
           "interrupted", "log_setting", "reading_store"]

F = TypeVar("F", bound=Callable[..., Any])

# setting -> the environment variable read when the setting is not configured.
ENVIRONMENT: Mapping[str, str] = {
    "default_server": "VOMNI_SERVER",
    "default_size": "VOMNI_DEFAULT_SIZE",
    "default_steps": "VOMNI_DEFAULT_STEPS",
    "default_guidance": "VOMNI_DEFAULT_GUIDANCE",
    "default_format": "VOMNI_DEFAULT_FORMAT",
    "default_voice": "VOMNI_DEFAULT_VOICE",
    "concurrency": "VOMNI_CONCURRENCY",
    "history": "VOMNI_HISTORY",
}
_OFF = ("0", "off", "false", "no")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The magics' defaults as one value (configured, else from the environment, else built in).

    ``None`` means "let the server decide" (its own size, steps, guidance, voice).
    """

    default_server: str | None = None
    default_size: str | None = None
    default_steps: int | None = None
    default_guidance: float | None = None
    default_format: str = "png"
    default_voice: str | None = None
    concurrency: int = 4
    history: bool = True
    history_path: str | None = None


@magics_class
class VomniMagics(Magics):
    """vomni_nb's magics and their settings (``%config VomniMagics`` lists them).

    Every family of magics (``ServerMagics``, ``ImageMagics``, ...) subclasses this class, so a setting
    configured here reaches all of them. An unset setting falls back to its environment variable:
    ``VOMNI_SERVER``, ``VOMNI_DEFAULT_SIZE``, ``VOMNI_DEFAULT_STEPS``, ``VOMNI_DEFAULT_GUIDANCE``,
    ``VOMNI_DEFAULT_FORMAT``, ``VOMNI_DEFAULT_VOICE``, ``VOMNI_CONCURRENCY``, ``VOMNI_HISTORY=off``
    (``history_path`` has none: unset, the client's own ``VOMNI_HISTORY`` or the user cache dir holds it).
    """

    default_server = Unicode(None, allow_none=True, config=True,
                             help="Server (name or URL) for requests naming none [env VOMNI_SERVER]; unset: routing "
                                  "picks the server whose model does the task.")
    default_size = Unicode(None, allow_none=True, config=True,
                           help="Image size WIDTHxHEIGHT [env VOMNI_DEFAULT_SIZE]; unset: the server's default.")
    default_steps = Int(None, allow_none=True, config=True,
                        help="Denoising steps, 1-200 [env VOMNI_DEFAULT_STEPS]; unset: the model's default.")
    default_guidance = Float(None, allow_none=True, config=True,
                             help="Guidance (CFG) scale, 0-20 [env VOMNI_DEFAULT_GUIDANCE]; unset: the model's.")
    default_format = Unicode(None, allow_none=True, config=True,
                             help="Image format png|jpeg|webp [env VOMNI_DEFAULT_FORMAT]; unset: png.")
    default_voice = Unicode(None, allow_none=True, config=True,
                            help="Voice for speech and spoken answers [env VOMNI_DEFAULT_VOICE]; unset: the model's.")
    concurrency = Int(None, allow_none=True, config=True,
                      help="Requests at once per server in a sweep [env VOMNI_CONCURRENCY]; unset: 4.")
    history = Bool(None, allow_none=True, config=True,
                   help="Record generations in the history [env VOMNI_HISTORY=off turns it off]; unset: on.")
    history_path = Unicode(None, allow_none=True, config=True,
                           help="The history the magics record into and %omni_history / %omni_rerun read (a "
                                "folder or a .sqlite3 file); unset: the default one (VOMNI_HISTORY, else the "
                                "user cache dir).")

    @validate("default_size")
    def _check_size(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None:
            from vomni_nb.protocol.validate import format_size

            with usage_errors():
                return format_size(value)
        return value

    @validate("default_format")
    def _check_format(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None:
            from vomni_nb.protocol.validate import image_output_format

            with usage_errors():
                return image_output_format(value)
        return value

    @property
    def user_ns(self) -> dict[str, Any]:
        """The user's namespace (where ``{name}`` is looked up and ``--out VAR`` is stored)."""
        assert self.shell is not None, "magics run in a shell"
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def settings(self, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings now: each configured value, else its environment variable, else the default."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(Settings):
            configured = getattr(self, field.name)
            if configured is not None:
                values[field.name] = configured
                continue
            if field.name not in ENVIRONMENT:  # history_path: the client reads VOMNI_HISTORY itself
                continue
            text = environ.get(ENVIRONMENT[field.name], "").strip()
            if text:
                values[field.name] = _from_environment(field.name, text)
        return Settings(**values)


def _from_environment(name: str, text: str) -> Any:
    variable = ENVIRONMENT[name]
    try:
        if name == "history":
            return text.lower() not in _OFF  # any other value (a path) leaves it on
        if name in ("default_steps", "concurrency"):
            return int(text)
        if name == "default_guidance":
            return float(text)
    except ValueError as exc:
        raise UsageError(f"${variable} is {text!r}: not a number. Fix or unset it.") from exc
    if name == "default_size":
        from vomni_nb.protocol.validate import format_size

        with usage_errors(f"${variable}: "):
            return format_size(text)
    return text


@dataclasses.dataclass(frozen=True)
class MagicCall:
    """What a parsed magic line asks for: the twin (``"module:function"``) and its keyword arguments,
    plus what only the magic does with the result (``out``: a variable to store it in; ``quiet``: show nothing)."""

    twin: str
    kwargs: Mapping[str, Any]
    out: str | None = None
    quiet: bool = False
    waiting: str | None = None  # a twin without status=: this static line stands while it runs

    def twin_function(self) -> Callable[..., Any]:
        module, name = self.twin.split(":")
        function: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return function


def generation_flags(func: F) -> F:
    """The flags every generating magic takes (put it under the magic's own ``@argument``s)."""
    flags = [
        argument("--no-log", dest="log", action="store_false",
                 help="keep this generation out of the history (%%config VomniMagics.history=False: all)"),
        argument("--save", metavar="DIR", default=None, help="also write the files into DIR (never overwriting)"),
        argument("--out", metavar="VAR", default=None, help="store the result in the variable VAR"),
        argument("--server", metavar="NAME|URL", default=None,
                 help="the server to use: a name from %%omni_server list, or a URL"),
        argument("--model", metavar="MODEL", default=None,
                 help="the model to use (default: the running server whose model does this)"),
    ]
    for flag in flags:
        func = flag(func)
    return func


def common_arguments(args: Any, settings: Settings) -> dict[str, Any]:
    """The twin's keyword arguments from the shared flags (``--out`` is the magic's own, see MagicCall)."""
    if args.out is not None and (not args.out.isidentifier() or keyword.iskeyword(args.out)):
        raise UsageError(f"--out takes a variable name; {args.out!r} is not one.")
    server = args.server if args.server is not None else (settings.default_server if args.model is None else None)
    return {"model": args.model, "server": server, "save": args.save, "log": log_setting(args.log, settings)}


def log_setting(log: bool, settings: Settings) -> bool | str:
    """A twin's ``log`` for a magic: False with ``--no-log`` or ``%config VomniMagics.history = False``,
    else ``history_path`` when it is set (recorded there), else True (the default history)."""
    if not (log and settings.history):
        return False
    return settings.history_path or True


def reading_store(settings: Settings) -> Any:
    """The HistoryStore ``%omni_history`` and ``%omni_rerun`` read: ``history_path``'s, else None (the default)."""
    if settings.history_path is None:
        return None
    from vomni_nb._history.store import _database_path, _shared_store

    path = _database_path(settings.history_path)
    if not path.exists():
        raise UsageError(f"There is no history at {path} (%config VomniMagics.history_path); nothing has been recorded "
                         "there yet.")
    return _shared_store(path)


@contextlib.contextmanager
def usage_errors(prefix: str = "") -> Iterator[None]:
    """Bad input found by the library's checks (InvalidRequestError) as a UsageError with the same reason."""
    try:
        yield
    except WrongServerError:
        raise
    except InvalidRequestError as exc:
        raise UsageError(prefix + str(exc)) from exc


def interrupted(error: BaseException, what: str) -> BaseException:
    """A Ctrl-C as :class:`~vomni_nb.errors.Interrupted` (shown as one line), saying what became of the requests."""
    from vomni_nb.errors import Interrupted

    if isinstance(error, Interrupted):
        return error
    found = Interrupted(what, partial=getattr(error, "partial", None))
    found.__cause__ = error
    return found


def _advice_interrupted() -> str:
    from vomni_nb import _advice

    return _advice.interrupted()


def run_generation(shell: Any, call: MagicCall, *, line: WaitLine | None = None) -> Any:
    """Steps 2-4 of a generating magic: run the twin with a wait line, then show the result in its place
    (or nothing, with ``;``) and store it in ``--out``. Errors stay raised, rendered short. Returns the result."""
    from vomni_nb.display import WaitLine

    line = line or WaitLine()
    kwargs = {**call.kwargs, "status": line} if call.waiting is None else dict(call.kwargs)
    if call.waiting is not None:
        line.update(call.waiting, force=True)
    try:
        with usage_errors():
            result = call.twin_function()(**kwargs)
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "partial", None)  # a sweep keeps what finished
        if partial is None:
            line.finish("✗ interrupted; the server aborted the request")
        else:
            if call.out:
                shell.user_ns[call.out] = partial
            line.replace(partial)
        raise interrupted(exc, _advice_interrupted()) from None
    except VomniError as exc:
        line.clear()
        raise exc from None
    if call.out:
        shell.user_ns[call.out] = result
    if call.quiet:
        line.clear()
    else:
        line.replace(result)
    return result

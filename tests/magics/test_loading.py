"""``%load_ext vomni_nb`` stays light, ``%reload_ext`` works, and the settings survive a reload."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support.kernels import REPO

HEAVY = ("httpx", "PIL", "sqlite3", "ipywidgets", "anywidget", "psutil", "vomni_nb.client", "vomni_nb.async_client",
         "vomni_nb.server.manager", "vomni_nb.routing", "vomni_nb.generation", "vomni_nb._history", "vomni_nb.speech",
         "vomni_nb.conversation", "vomni_nb.videos", "vomni_nb._sources", "vomni_nb.widgets")


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_loading_the_extension_imports_only_the_magics() -> None:
    out = _run(f"""
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        before = set(sys.modules)  # IPython's own history already loads sqlite3: count only what loading adds
        shell.run_line_magic("load_ext", "vomni_nb")
        for name in ("omni_image", "omni_edit", "omni_speak", "omni_chat", "omni_video"):
            assert name in shell.magics_manager.magics["cell"], name
        for name in ("omni_server", "omni_voice", "omni_history", "omni_rerun", "omni_studio"):
            assert name in shell.magics_manager.magics["line"], name
        print(sorted(name for name in {HEAVY!r} if name in sys.modules and name not in before))
    """)
    assert out == "[]"


def test_a_family_loads_when_its_magic_is_first_used_with_the_settings_of_then() -> None:
    out = _run("""
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "vomni_nb")
        print("vomni_nb.magics.image" in sys.modules)
        shell.run_line_magic("config", "VomniMagics.default_size = '64x32'")  # before ImageMagics exists
        magic = shell._find_with_lazy_load("cell", "omni_image")
        print("vomni_nb.magics.image" in sys.modules, type(magic.__self__).__name__, magic.__self__.default_size)
        print("vomni_nb.magics.chat" in sys.modules)  # only the family used
    """)
    assert out.splitlines() == ["False", "True ImageMagics 64x32", "False"]


def test_reload_ext_keeps_the_magics_and_the_settings() -> None:
    out = _run("""
        from IPython.core.interactiveshell import InteractiveShell
        from vomni_nb.magics import LAZY, VomniMagics
        shell = InteractiveShell.instance()

        def use_every_magic():
            for name, (kind, _) in LAZY.items():
                assert shell._find_with_lazy_load(kind, name) is not None, name

        shell.run_line_magic("load_ext", "vomni_nb")
        use_every_magic()
        shell.run_line_magic("config", "VomniMagics.default_size = '64x32'")
        shell.run_line_magic("reload_ext", "vomni_nb")
        use_every_magic()  # declared again, and loaded again
        ours = [obj for obj in shell.configurables if isinstance(obj, VomniMagics)]
        names = sorted(type(obj).__name__ for obj in ours)
        assert names == sorted(set(names)), names  # one of each: the old ones were removed
        print(names, {obj.default_size for obj in ours})
        shell.run_line_magic("unload_ext", "vomni_nb")
        print(any(name in shell.magics_manager.magics[kind] for name, (kind, _) in LAZY.items()))
    """)
    assert out.splitlines() == ["['ChatMagics', 'EditMagics', 'HistoryMagics', 'ImageMagics', 'ServerMagics', "
                                "'SpeechMagics', 'StudioMagics', 'VideoMagics', 'VomniMagics'] {'64x32'}", "False"]

"""Build the optional compiled core of the capture reader (``analyzer/capture/_fastread.pyx``, Cython).

Everything else is in pyproject.toml. The extension is optional: without Cython or a working C compiler the
install goes on without it, and ghostcap runs its pure-Python reader (``ghostcap --version`` says which runs).
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CORE = Extension("analyzer.capture._fastread", ["analyzer/capture/_fastread.pyx"], optional=True)


class OptionalBuildExt(build_ext):
    """A failed compile is a warning: ``optional=True`` alone does not cover every failure (a compiler that is
    not there, or fails, in an editable install)."""

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001 - any failure: the pure-Python reader runs
            print(f"warning: {ext.name} not built ({e}); ghostcap will run its pure-Python reader", file=sys.stderr)  # noqa: T201


def extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:  # a build without isolation and without Cython
        print("warning: Cython not found; ghostcap will run its pure-Python reader", file=sys.stderr)  # noqa: T201
        return []
    try:
        built = cythonize([CORE], compiler_directives={"language_level": "3"}, quiet=True)
    except Exception as e:  # noqa: BLE001
        print(f"warning: {CORE.name} not translated ({e}); ghostcap will run its pure-Python reader", file=sys.stderr)  # noqa: T201
        return []
    for ext in built:
        ext.optional = True  # cythonize's copies drop it: without it an editable install copies a missing .so
    return built


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})

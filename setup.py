"""Build the optional compiled core of the capture reader (``analyzer/capture/_fastread.pyx``, Cython).

Everything else is in pyproject.toml. The extension is optional: without Cython or a C compiler the install goes
on, and ghostcap runs its pure-Python reader (``ghostcap --version`` says which reader runs).
"""

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # no Cython (it is a build requirement; a build without isolation may lack it)
    ext_modules = []
else:
    ext_modules = cythonize(
        [Extension("analyzer.capture._fastread", ["analyzer/capture/_fastread.pyx"], optional=True)],
        compiler_directives={"language_level": "3"},
        quiet=True,
    )

setup(ext_modules=ext_modules)

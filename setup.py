"""Build hook: compile the pure core's hot modules with mypyc (issue 11); the rest is in pyproject.toml.

Why a staging copy: the repository keeps ``capability/`` and ``alerts/`` at the top level and pyproject's
``package-dir`` maps them to ``cpkmon.capability`` / ``cpkmon.alerts``. mypyc names a module after the folders
holding ``__init__.py`` above it, so compiling ``capability/window.py`` in place would build a module called
``capability.window``. The sources are therefore copied into ``build/mypyc_src/cpkmon/...`` (the installed
layout) and compiled there; the ``.py`` files are still installed beside the extensions, which is what the
``CPKMON_PURE_PYTHON=1`` runtime switch in ``cpkmon/__init__.py`` loads instead.

Switches (environment, read at build time):

* ``CPKMON_PURE_PYTHON=1`` — build no extension (a wheel identical to the pure-Python package);
* ``MYPYC_OPT_LEVEL`` — mypyc's C optimisation level (default 3; 0 builds in ~60 % of the time, runs at
  pure-Python speed, still exercises the compiled semantics);
* no C compiler or no Python headers: the pure core, with a message (``pip install .`` must work anywhere);
* an editable install (``pip install -e .``) never compiles: an extension beside the source would shadow every
  later edit of the ``.py`` file until it is rebuilt.

Only a command that builds a wheel or extensions compiles: pip also runs this file for ``egg_info`` /
``dist_info`` (metadata), and compiling there would double the build time.

The type check mypyc runs is the build's, not CI's: strictness is CI's ``mypy`` step. Here the modules it
does not compile are followed silently, so the build works where pip builds the wheel before it installs
pydantic (a fresh ``pip install .``): the model's classes are then ``Any`` to the compiled code, which is
correct, only not specialised.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent

# The per-subgroup-close path (issue 11's profile) and what it calls per value or per close. Not compiled:
# the pydantic document model (alerts/model.py) and the alarm book / audit / KPI modules (cold, and model.py's
# classes subclass pydantic's BaseModel), the package __init__ files.
COMPILED = (
    "capability/moments.py",
    "capability/subgroups.py",
    "capability/window.py",
    "capability/constants.py",
    "capability/estimators.py",
    "capability/indices.py",
    "capability/control.py",
    "capability/batch.py",
    "capability/characteristic.py",
    "capability/spec.py",
    "capability/options.py",
    "capability/timeutil.py",
    "capability/histogram.py",
    "capability/yields.py",
    "capability/costs.py",
    "capability/sigma.py",
    "alerts/line.py",
    "alerts/ladder.py",
    "alerts/engine.py",
    "alerts/documents.py",
    "alerts/process_alarms.py",
)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


_BUILD_COMMANDS = {"bdist_wheel", "build", "build_ext", "install", "bdist"}

_BUILD_MYPY_CONFIG = """\
[mypy]
python_version = 3.11
ignore_missing_imports = True
follow_imports = silent
"""


def _no_toolchain() -> str | None:
    """Why this machine cannot compile the core, or None. Checked before compiling so that ``pip install .``
    on a machine without a C compiler or Python headers installs the pure core (identical results, tested)
    instead of failing; the Docker image and CI assert that they got the compiled one."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc}) on PATH"
    include = sysconfig.get_paths().get("include", "")
    if not os.path.isfile(os.path.join(include, "Python.h")):
        return f"no Python headers (Python.h) in {include}"
    return None


def _ext_modules() -> list[object]:
    commands = set(sys.argv[1:])
    if _flag("CPKMON_PURE_PYTHON") or "editable_wheel" in commands or not commands & _BUILD_COMMANDS:
        return []
    reason = _no_toolchain()
    if reason is not None:
        print(f"cpkmon: building the pure-Python core: {reason}", file=sys.stderr)
        return []
    from mypyc.build import mypycify  # build-system requires pins mypy

    stage = HERE / "build" / "mypyc_src"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "cpkmon").mkdir(parents=True)
    shutil.copy2(HERE / "cpkmon" / "__init__.py", stage / "cpkmon" / "__init__.py")
    for pkg in ("capability", "alerts"):
        shutil.copytree(HERE / pkg, stage / "cpkmon" / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    config = HERE / "build" / "mypyc.ini"
    config.write_text(_BUILD_MYPY_CONFIG, encoding="utf-8")
    paths = [str((stage / "cpkmon" / p).relative_to(HERE)) for p in COMPILED]
    return list(
        mypycify(
            ["--config-file", str(config), *paths],
            opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3"),
            target_dir=str(HERE / "build" / "mypyc_c"),
        )
    )


setup(ext_modules=_ext_modules())

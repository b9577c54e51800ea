"""cpkmon: a Kafka-native streaming process-capability monitor.

The repository keeps the design's folders at the top level (``capability/``, ``alerts/``, ``stream/``,
``api/`` beside ``cpkmon/``) and setuptools' ``package-dir`` maps them to ``cpkmon.capability`` and so on in
an installed copy. A process whose ``sys.path`` starts at a source checkout (``python -m cpkmon.cli`` run
from the repository root, pytest collecting ``tests/``) imports this folder directly; the same mapping is
made here by adding the checkout root to this package's search path, so ``cpkmon.capability`` resolves to
``capability/`` either way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from importlib.util import spec_from_file_location

__version__ = "0.1.0"

_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if all(os.path.isfile(os.path.join(_checkout, sub, "__init__.py")) for sub in ("capability", "alerts")):
    __path__.append(_checkout)

#: the pure core's packages, whose hot modules a regular install compiles with mypyc (setup.py)
_CORE = ("cpkmon.capability.", "cpkmon.alerts.")


class _PureCoreFinder:
    """Loads the ``.py`` source of a core module even where a compiled extension sits beside it.

    Why: Python's file finder prefers an extension module to a source file of the same name, so an
    installed compiled core would otherwise always win. ``CPKMON_PURE_PYTHON=1`` (read once, at the first
    ``import cpkmon``) puts this finder first, which runs one installation on the pure path — to test it
    against the compiled one, or to rule the compiled core out when a result looks wrong.
    """

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None, target: object = None) -> ModuleSpec | None:
        if path is None or not name.startswith(_CORE):
            return None
        leaf = name.rpartition(".")[2]
        for folder in path:
            source = os.path.join(folder, leaf + ".py")
            if os.path.isfile(source):
                return spec_from_file_location(name, source)
        return None


def compiled_core() -> bool:
    """Whether the hot core runs as mypyc-compiled code (reported by ``cpkmon --version``-like diagnostics and
    asserted by CI so that the two test runs cannot silently both be pure)."""
    from cpkmon.capability import window

    return not window.__file__.endswith(".py") if window.__file__ else False


if os.environ.get("CPKMON_PURE_PYTHON", "").strip().lower() not in ("", "0", "false", "no"):
    sys.meta_path.insert(0, _PureCoreFinder())

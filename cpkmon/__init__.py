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

__version__ = "0.1.0"

_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if all(os.path.isfile(os.path.join(_checkout, sub, "__init__.py")) for sub in ("capability", "alerts")):
    __path__.append(_checkout)

"""Top entries of a py-spy profile (not a test): ``python bench/profile_top.py PROFILE.txt [--top 15]``.

Why a script: the README's Performance section quotes the profile's top entries before and after a change,
and they must come from a command anyone can re-run. ``PROFILE.txt`` is py-spy's raw (collapsed-stack)
output — ``py-spy record --format raw -o PROFILE.txt -- python …`` — one line per stack, ``frame;frame;…
COUNT``. Prints, per function (``function (file)``), the share of samples in which it is the innermost frame
(self time) and in which it is anywhere on the stack (total time), highest self time first; ``--only TEXT``
keeps the stacks containing TEXT (a benchmark's measured part).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _name(frame: str) -> str:
    """``func (path/to/file.py:line)`` → ``func (file.py)``: lines of one function are merged."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{m['func']} ({Path(m['file']).name})"


def summarize(text: str, only: str | None = None) -> tuple[int, Counter[str], Counter[str]]:
    """(samples, self samples per function, samples with the function on the stack); with ``only``, just
    the stacks that contain that text (e.g. the worker's frames in a benchmark that also runs a ceiling)."""
    total = 0
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or (only is not None and only not in stack):
            continue
        n = int(count)
        frames = [_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            anywhere[f] += n
    return total, own, anywhere


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--only", help="count only stacks containing this text (percentages of those)")
    args = ap.parse_args()
    total, own, anywhere = summarize(args.profile.read_text(), args.only)
    print(f"{total} samples")
    print(f"{'self %':>7} {'total %':>8}  function (file)")
    for name, n in own.most_common(args.top):
        print(f"{100 * n / total:7.1f} {100 * anywhere[name] / total:8.1f}  {name}")


if __name__ == "__main__":
    main()

"""Prints the mutation score of the last `mutmut run` (killed / (killed + survived), per module)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], capture_output=True, text=True)
status: Counter[tuple[str, str]] = Counter()
for line in out.stdout.splitlines():
    name, _, state = line.strip().rpartition(": ")
    if name and state:
        status[(re.split(r"\.x[_ǁ]", name)[0], state)] += 1
modules = sorted({module for module, _ in status})
total_killed = total_survived = 0
for module in modules:
    killed, survived = status[(module, "killed")], status[(module, "survived")]
    total_killed, total_survived = total_killed + killed, total_survived + survived
    print(f"{module:40} {killed:5} killed {survived:5} survived  {100 * killed / max(1, killed + survived):5.1f} %")
other = {state: n for (_m, state), n in status.items() if state not in ("killed", "survived")}
print(f"{'all':40} {total_killed:5} killed {total_survived:5} survived  "
      f"{100 * total_killed / max(1, total_killed + total_survived):5.1f} %   other: {other}")

"""Prints the mutation score of the last `mutmut run`s, per module and overall: killed / (killed + survived).

Per module also what was neither (timeouts, mutants no test reaches, mutants not run yet: a module run alone with
`mutmut run "overlaytui.safe*"` leaves the others "not checked"). Modules with nothing checked are listed as not
run and left out of the total.

    python tools/mutation-score.py [--markdown] [--min-module PCT] [--min-total PCT] [MODULE_PREFIX...]

--markdown prints the table of docs/benchmarks.md; --min-module / --min-total make the exit status 1 when a module
(or the total) is below the target; prefixes (`overlaytui.probes`) keep only the modules they start.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict


def module_of(mutant: str) -> str:
    """`overlaytui.probes.session.xǁProbeStateǁcoverage__mutmut_3` -> `overlaytui.probes.session`."""
    return re.split(r"\.x[_ǁ]", mutant)[0]


def tally(lines: list[str]) -> dict[str, Counter[str]]:
    """Module -> status -> mutants, from `mutmut results --all true` lines (`name: status`)."""
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        name, _, state = line.strip().rpartition(": ")
        if name and state:
            found[module_of(name)][state] += 1
    return dict(found)


def score(killed: int, survived: int) -> float:
    return 100 * killed / max(1, killed + survived)


def report(found: dict[str, Counter[str]], markdown: bool = False) -> tuple[list[str], float, dict[str, float]]:
    """The lines to print, the total score and each module's (modules with nothing checked are not run)."""
    lines = ["| module | killed / survived | score | other |", "|---|---|---|---|"] if markdown else []
    total = Counter[str]()
    scores = {}
    for module in sorted(found):
        states = found[module]
        killed, survived = states["killed"], states["survived"]
        other = {state: n for state, n in sorted(states.items()) if state not in ("killed", "survived")}
        other_text = ", ".join(f"{n} {state}" for state, n in other.items())
        if killed + survived == 0:
            lines.append(f"| {module} | not run | | {other_text} |" if markdown
                         else f"{module:40} not run ({other_text})")
            continue
        total.update(states)
        scores[module] = score(killed, survived)
        if markdown:
            lines.append(f"| {module} | {killed:,} / {survived:,} | {scores[module]:.1f} % | {other_text} |")
        else:
            lines.append(f"{module:40} {killed:5} killed {survived:5} survived  {scores[module]:5.1f} %"
                         + (f"   {other_text}" if other_text else ""))
    overall = score(total["killed"], total["survived"])
    other = ", ".join(f"{n} {s}" for s, n in sorted(total.items()) if s not in ("killed", "survived"))
    if markdown:
        lines.append(f"| **all** | **{total['killed']:,} / {total['survived']:,}** | **{overall:.1f} %** | {other} |")
    else:
        lines.append(f"{'all':40} {total['killed']:5} killed {total['survived']:5} survived  {overall:5.1f} %"
                     + (f"   {other}" if other else ""))
    return lines, overall, scores


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", metavar="MODULE_PREFIX")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--min-module", type=float, default=0.0)
    parser.add_argument("--min-total", type=float, default=0.0)
    args = parser.parse_args(argv)
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], capture_output=True,
                         text=True)
    found = {m: s for m, s in tally(out.stdout.splitlines()).items()
             if not args.prefixes or any(m.startswith(p) for p in args.prefixes)}
    lines, overall, scores = report(found, args.markdown)
    print("\n".join(lines))
    low = [f"{m} {s:.1f} %" for m, s in scores.items() if s < args.min_module]
    if low or (scores and overall < args.min_total):
        print(f"below target: {', '.join(low) or f'all {overall:.1f} %'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env bash
# Ship what we test: build the wheel, install it into a fresh virtualenv, check that the themes are inside the
# package, and run the installed `overlaytui --demo` in a terminal (tmux) long enough to see its first screen.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'tmux kill-session -t wheelcheck 2>/dev/null || true; rm -rf "$work"' EXIT

python3 -m pip wheel -q --no-deps -w "$work/dist" . >/dev/null
wheel=$(ls "$work"/dist/overlaytui-*.whl)
echo "built $(basename "$wheel")"
python3 -m zipfile -l "$wheel" | grep -E "overlaytui/themes/.*\.toml" | awk '{print "  in the wheel: " $1}'

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel"
cd "$work"   # not the source tree: only the installed package can be found
"$work/venv/bin/python" - <<'PY'
from overlaytui.themes import load_themes, themes_dir
names = [t.name for t in load_themes()]
assert "site-packages" in str(themes_dir()), themes_dir()
assert {"overlaytui-dark", "overlaytui-light", "overlaytui-high-contrast"} <= set(names), names
print(f"  themes load from {themes_dir()}: {', '.join(names)}")
PY

command -v tmux >/dev/null || { echo "tmux is needed to run the demo in a terminal"; exit 1; }
OVERLAYTUI_CONFIG="$work/config.toml" tmux new-session -d -s wheelcheck -x 120 -y 32 \
    "$work/venv/bin/overlaytui --demo; echo exit=\$? > $work/exit; sleep 30"
for _ in $(seq 1 50); do
    screen=$(tmux capture-pane -t wheelcheck -p)
    grep -q "Topology" <<<"$screen" && grep -q "payments-secure" <<<"$screen" && break
    sleep 0.2
done
grep -q "payments-secure" <<<"$screen" || { echo "the demo did not draw its topology:"; echo "$screen"; exit 1; }
tmux send-keys -t wheelcheck q
for _ in $(seq 1 50); do [ -f "$work/exit" ] && break; sleep 0.1; done
echo "  installed overlaytui --demo drew its first screen and quit with $(cat "$work/exit")"

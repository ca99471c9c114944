#!/usr/bin/env bash
# Run tests against the lowest versions that pyproject.toml allows for the libraries the faces use
# (textual, rich, typer, pydantic, pyyaml), so a lower bound there is one that was run, not guessed.
#
#   scripts/check_min_versions.sh                 # the lab's tests (tests/tui but its snapshots)
#   scripts/check_min_versions.sh tests/cli tests/test_config.py -x
#
# The pinned packages (and what they pull in) go into a throwaway folder placed in front of the current
# environment on PYTHONPATH; torch and the test tools come from that environment. Not part of CI: it
# downloads and installs a second set of packages. Needs network access to the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}

pins=$("$python" - <<'EOF'
import re
import tomllib

with open("pyproject.toml", "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
for dep in deps:
    found = re.fullmatch(r"(textual|rich|typer|pydantic|pyyaml)>=([0-9][0-9.]*)", dep.replace(" ", ""))
    if found:
        print(f"{found[1]}=={found[2]}")
EOF
)
[ -n "$pins" ] || { echo "check_min_versions: no lower bounds found in pyproject.toml" >&2; exit 2; }

target=$(mktemp -d "${TMPDIR:-/tmp}/snnlab-min-versions.XXXXXX")
trap 'rm -rf "$target"' EXIT
echo "installing the lower bounds: $(echo $pins)"
# shellcheck disable=SC2086  # one argument per pin
"$python" -m pip install --quiet --disable-pip-version-check --target "$target" $pins
PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}" "$python" - <<'EOF'
from importlib.metadata import version

print("testing with " + ", ".join(f"{n} {version(n)}" for n in ("textual", "rich", "typer", "pydantic", "pyyaml")))
EOF
# The snapshots pin the pixels of the Textual release they were recorded with; each release draws a few
# details differently, so they are left out here: this checks that the lab works, not how it looks.
[ $# -gt 0 ] || set -- tests/tui --ignore=tests/tui/test_snapshots.py
PYTHONPATH="$target:$PWD${PYTHONPATH:+:$PYTHONPATH}" "$python" -m pytest -q -p no:cacheprovider "$@"

# Sourced by the other scripts: where the project's Python venv lives. One fixed folder outside
# the checkout, so fresh clones (CI clones anew each run) share one multi-GB install.
GF_VENV=${GREENFOUND_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/greenfound/venv}
GF_PYTHON=$GF_VENV/bin/python

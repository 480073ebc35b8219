#!/usr/bin/env bash
# `make airflow-env`: Airflow in its own virtual environment (.cache/airflow-venv; never flexops' .venv), exactly as
# requirements-airflow.txt pins it, for tests/test_airflow.py. Skipped when the environment was made from a file
# with the same sha256; otherwise made anew: pip installs the pinned uv, uv installs the rest (about a minute,
# where pip's resolver takes many minutes over Airflow's ~130 packages). uv keeps its download cache where it
# always does (~/.cache/uv, or UV_CACHE_DIR), so a machine that installed it once installs it again in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
env_dir=${FLEXOPS_AIRFLOW_ENV:-.cache/airflow-venv}
requirements=requirements-airflow.txt
stamp="$env_dir/.requirements-sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)

if [ -x "$env_dir/bin/airflow" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "airflow-env: up to date ($env_dir)"
  exit 0
fi
started=$(date +%s)
rm -rf "$env_dir"
"$python" -m venv "$env_dir"
uv_pin=$(grep -E '^uv==' "$requirements")
"$env_dir/bin/python" -m pip install --quiet --disable-pip-version-check "$uv_pin"
# --native-tls: the system's certificates (a proxy's CA among them), as pip uses them
"$env_dir/bin/uv" pip install --quiet --native-tls --python "$env_dir/bin/python" -r "$requirements"
"$env_dir/bin/python" -c "import airflow.sdk, airflow.providers.standard"  # it imports, or this fails
echo "$want" > "$stamp"
echo "airflow-env: $("$env_dir/bin/python" -c 'import airflow; print("Airflow", airflow.__version__)') in" \
  "$env_dir, installed in $(( $(date +%s) - started )) s"

#!/usr/bin/env bash
# Builds a Lambda layer holding boto3 (and botocore, s3transfer, jmespath,
# python-dateutil, urllib3, six): Lambda's Python runtime ships boto3, Kumo's
# does not, so functions get it from this layer at /opt/python.
#
#   deploy/layers/boto3.sh [OUT.zip]            # build (default: ./boto3-layer.zip)
#   deploy/layers/boto3.sh OUT.zip --publish    # build, then `kumo layer publish boto3`
#
# Variables:
#   KUMO_PYTHON     the agents' interpreter (default /usr/bin/python3): the
#                   layer is byte-compiled for it, so imports start fast
#   BOTO3_VERSION   pin a version (default: the newest on PyPI)
#   LAYER_NAME      name to publish under (default boto3)
#   PIP_INDEX_URL   a PyPI mirror, as pip reads it
# Needs the interpreter's venv module (Debian: python3-venv) and PyPI access.
set -euo pipefail
OUT="$(realpath -m "${1:-boto3-layer.zip}")"
PUBLISH="${2:-}"
PY="${KUMO_PYTHON:-/usr/bin/python3}"
NAME="${LAYER_NAME:-boto3}"
SPEC="boto3${BOTO3_VERSION:+==$BOTO3_VERSION}"

[ -x "$PY" ] || { echo "error: $PY is not an executable Python (set KUMO_PYTHON)" >&2; exit 2; }
"$PY" -c 'import venv, ensurepip' 2>/dev/null \
  || { echo "error: $PY has no venv/ensurepip module (Debian: apt-get install python3-venv)" >&2; exit 2; }
case "$PUBLISH" in ""|--publish) ;; *) echo "error: unknown option $PUBLISH (use --publish)" >&2; exit 2;; esac

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "==> installing $SPEC for $("$PY" -c 'import sys; print("python%d.%d" % sys.version_info[:2])')" >&2
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --no-compile \
  --target "$WORK/layer/python" "$SPEC"
# Byte-compile for the agents' interpreter. Unchecked-hash .pyc files stay
# valid whatever the files' modification times after unpacking, and the
# sandbox's /opt is read-only (nothing could be cached there later).
"$PY" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$WORK/layer/python" >/dev/null
rm -rf "$WORK/layer/python/bin"
mkdir -p "$(dirname "$OUT")"
"$PY" - "$WORK/layer" "$OUT" <<'PYEOF'
import os, sys, zipfile
root, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            z.write(path, os.path.relpath(path, root))
os.replace(out + ".tmp", out)
PYEOF
echo "==> wrote $OUT ($(du -h "$OUT" | cut -f1))" >&2
if [ "$PUBLISH" = --publish ]; then
  RUNTIME="$("$PY" -c 'import sys; print("python%d.%d" % sys.version_info[:2])')"
  kumo layer publish "$NAME" --code "$OUT" --compatible-runtimes "$RUNTIME" \
    --description "$SPEC for $RUNTIME (deploy/layers/boto3.sh)"
fi

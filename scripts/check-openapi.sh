#!/usr/bin/env bash
# Checks the coaching API's OpenAPI document against the OpenAPI 3.1
# specification with a standard validator from PyPI (openapi-spec-validator,
# in a venv under the target dir): what client generators will read must be
# a valid document (unique operation ids, well-formed schemas and
# parameters). Exits non-zero on any problem.
set -euo pipefail

VALIDATOR_VERSION=0.9.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET_DIR/openapi-check-venv"
DOCUMENT="$TARGET_DIR/openapi.json"

cd "$ROOT"
cargo build --quiet -p airsync --bin airsync
"$TARGET_DIR/debug/airsync" openapi >"$DOCUMENT"

source "$ROOT/scripts/lib/venv.sh"
pinned_venv "$VENV" openapi-spec-validator "$VALIDATOR_VERSION"
"$VENV/bin/python" - "$DOCUMENT" <<'PY'
import json
import sys

from openapi_spec_validator import validate

with open(sys.argv[1]) as f:
    document = json.load(f)
validate(document)
operations = sum(
    1 for item in document["paths"].values() for verb in item if verb in ("get", "post", "patch", "delete")
)
print(f"openapi: {sys.argv[1]} is a valid OpenAPI {document['openapi']} document ({operations} operations)")
PY

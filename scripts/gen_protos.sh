#!/usr/bin/env bash
# Regenerates the committed Python stubs (and .pyi type stubs) from proto/ into scfed/ (the
# wheel gets the .proto files themselves from setup.py).
# Old output is wiped first so a removed .proto leaves nothing behind, once the generator is
# known to be there (the project's .venv has it: scripts/_venv.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root"}
python=${PYTHON:-"$root/.venv/bin/python"}
if ! "$python" -c 'import grpc_tools.protoc, mypy_protobuf' 2>/dev/null; then
  echo "gen_protos: $python lacks grpc_tools or mypy-protobuf (run scripts/_venv.sh, or set PYTHON)" >&2
  exit 1
fi
# The mypy-protobuf plugins live beside the interpreter.
export PATH="$(dirname "$(command -v "$python")"):$PATH"
find "$out/scfed" -name '*_pb2*.py' -delete -o -name '*_pb2*.pyi' -delete \
  2>/dev/null || true
mkdir -p "$out"
cd "$root/proto"
"$python" -m grpc_tools.protoc -I . \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  $(find scfed -name '*.proto' | sort)
for d in $(cd "$out" && find scfed -type d); do
  [ -f "$out/$d/__init__.py" ] || : > "$out/$d/__init__.py"
done

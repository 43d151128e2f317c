#!/usr/bin/env bash
# Regenerates the committed Python stubs (and .pyi type stubs) from proto/ into scfed/, with a
# copy of each .proto.
# Old output is wiped first so a removed .proto leaves nothing behind.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root"}
python=${PYTHON:-python}
# The mypy-protobuf plugins live beside the interpreter.
export PATH="$(dirname "$(command -v "$python")"):$PATH"
find "$out/scfed" -name '*_pb2*.py' -delete -o -name '*_pb2*.pyi' -delete -o -name '*.proto' -delete \
  2>/dev/null || true
mkdir -p "$out"
cd "$root/proto"
"$python" -m grpc_tools.protoc -I . \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  $(find scfed -name '*.proto' | sort)
# The wheel carries each .proto beside its generated code, at its import path, so a client in
# another language can compile the contracts from the installed package (protoc -I site-packages).
for f in $(find scfed -name '*.proto'); do cp "$f" "$out/$f"; done
for d in $(cd "$out" && find scfed -type d); do
  [ -f "$out/$d/__init__.py" ] || : > "$out/$d/__init__.py"
done

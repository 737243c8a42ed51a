#!/usr/bin/env bash
# Prepares a call of the lent GPU machine (the `device` tool; see BENCHMARKS.md for what runs
# there) on the development machine, where the build happens: the release binary, the kernel
# bench and the GPU test binaries, stripped, into .gpu/ (with the binary of BASE_REV, if
# given, as .gpu/wgrnn-base for a same-call before/after), and the Vulkan loader packages
# into .gl/ (the GPU machine has the driver but no loader). Both folders are ignored by git;
# name them in the call's `carry`. Then run benches/device_session.sh there.
#
#   benches/device_prepare.sh [BASE_REV]
set -eu
cd "$(dirname "$0")/.."
mkdir -p .gpu
cargo build --release --quiet
cp target/release/wgrnn .gpu/wgrnn
# The bench and test executables: cargo prints their paths when it builds them.
cargo bench --no-run --bench kernels --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])' | while read -r exe; do cp "$exe" .gpu/kernels; done
for t in gpu_shader_checks gpu_training_step gpu_kernels gpu_half_precision; do
  cargo test --release --no-run --test "$t" --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])' | while read -r exe; do cp "$exe" ".gpu/$t"; done
done
if [ -n "${1:-}" ]; then
  rm -rf /tmp/wgrnn-device-base
  git worktree add -f /tmp/wgrnn-device-base "$1" >/dev/null
  (cd /tmp/wgrnn-device-base && CARGO_TARGET_DIR=/tmp/wgrnn-device-base-target cargo build --release --quiet)
  cp /tmp/wgrnn-device-base-target/release/wgrnn .gpu/wgrnn-base
  git worktree remove --force /tmp/wgrnn-device-base
fi
strip .gpu/* 2>/dev/null || true
if ! ls .gl/*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .gpu .gl

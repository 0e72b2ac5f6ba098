#!/usr/bin/env bash
# The checks every commit passes before it lands: formatting, lints, docs,
# and the structure of src/ (import layering, the child side's rules).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
python3 scripts/structure.py

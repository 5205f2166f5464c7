#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need when it is missing (as root,
# from Debian), then checks formatting, lints and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_build_tools
need_test_servers

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --all-targets --locked

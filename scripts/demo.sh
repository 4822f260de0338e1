#!/usr/bin/env bash
# make demo: make a busybox base image, load it, build testdata/demo as
# demo:v1, export it, and show what was built.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO_DIR=${DEMO_DIR:-$PWD/.demo}
B="$PWD/bin/builder --root $DEMO_DIR/root"
mkdir -p "$DEMO_DIR"

step() { printf '\n==> %s\n' "$*"; }

# start_registry runs docker-registry on a free 127.0.0.1 port with its own
# config and storage under $DEMO_DIR; the EXIT trap stops it by PID, also
# when the demo fails.
REG_PID=
stop_registry() {
  if [ -n "$REG_PID" ]; then
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
  fi
}
trap stop_registry EXIT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
start_registry() {
  rm -rf "$DEMO_DIR/registry"
  mkdir -p "$DEMO_DIR/registry"
  for _ in 1 2 3 4 5; do
    local port=$((20000 + RANDOM % 20000))
    port_open "$port" && continue
    REGISTRY=127.0.0.1:$port
    printf '%s\n' 'version: 0.1' 'log:' '  level: error' '  accesslog:' '    disabled: true' \
      'storage:' '  filesystem:' "    rootdirectory: $DEMO_DIR/registry/storage" \
      'http:' "  addr: $REGISTRY" '  secret: builder-demo' >"$DEMO_DIR/registry/config.yml"
    env -u REGISTRY_HTTP_ADDR /usr/bin/docker-registry serve "$DEMO_DIR/registry/config.yml" \
      >"$DEMO_DIR/registry/log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 100); do
      port_open "$port" && return 0
      kill -0 "$REG_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_registry
    REG_PID=
  done
  echo "could not start docker-registry; its log:" >&2
  cat "$DEMO_DIR/registry/log" >&2
  return 1
}

step "making a busybox base image from Debian's busybox-static"
go run ./internal/testutil/mkbusybox -o "$DEMO_DIR/busybox.tar" -name busybox:latest
$B load -i "$DEMO_DIR/busybox.tar"

step "building testdata/demo as demo:v1"
$B build testdata/demo -t demo:v1 --build-arg GREETING=hello \
  -o type=oci,dest="$DEMO_DIR/demo.tar" \
  -o type=local,dest="$DEMO_DIR/rootfs"

step "rebuilding: every step is a cache hit"
$B build testdata/demo -t demo:v1 --build-arg GREETING=hello

step "building it with --source-date-epoch --check-reproducible (bit for bit the same twice?)"
$B build testdata/demo -t demo:repro --build-arg GREETING=hello --source-date-epoch 1700000000 \
  --check-reproducible --progress quiet

step "builder images"
$B images

step "image config"
$B inspect demo:v1 | sed -n '/"config": {/,/^  }/p' | grep -E '"(User|WorkingDir|Entrypoint|Cmd|Env|ExposedPorts|Labels|Healthcheck)"' -A3 | head -40

step "the exported rootfs ($DEMO_DIR/rootfs/srv/app)"
ls -ln "$DEMO_DIR/rootfs/srv/app"
echo "message.txt: $(cat "$DEMO_DIR/rootfs/srv/app/message.txt")"

step "starting a local registry (Debian's docker-registry) on a free port"
start_registry
echo "registry at $REGISTRY (pid $REG_PID, storage $DEMO_DIR/registry)"

step "pushing demo:v1 to $REGISTRY/demo:v1"
$B push demo:v1 "$REGISTRY/demo:v1"

step "pushing again: the registry has every blob"
$B push demo:v1 "$REGISTRY/demo:v1"

step "pulling it back into a fresh --root ($DEMO_DIR/root-pulled)"
rm -rf "$DEMO_DIR/root-pulled"
"$PWD/bin/builder" --root "$DEMO_DIR/root-pulled" pull "$REGISTRY/demo:v1"
"$PWD/bin/builder" --root "$DEMO_DIR/root-pulled" images
skopeo inspect --tls-verify=false "docker://$REGISTRY/demo:v1" | grep -E '"(Name|Digest|Architecture)"'

echo
echo "OCI archive: $DEMO_DIR/demo.tar (try: skopeo inspect oci-archive:$DEMO_DIR/demo.tar)"

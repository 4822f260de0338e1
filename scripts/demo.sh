#!/usr/bin/env bash
# make demo: make a busybox base image, load it, build testdata/demo as
# demo:v1, export it, and show what was built.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO_DIR=${DEMO_DIR:-$PWD/.demo}
B="$PWD/bin/builder --root $DEMO_DIR/root"
mkdir -p "$DEMO_DIR"

step() { printf '\n==> %s\n' "$*"; }

step "making a busybox base image from Debian's busybox-static"
go run ./internal/testutil/mkbusybox -o "$DEMO_DIR/busybox.tar" -name busybox:latest
$B load -i "$DEMO_DIR/busybox.tar"

step "building testdata/demo as demo:v1"
$B build testdata/demo -t demo:v1 --build-arg GREETING=hello \
  -o type=oci,dest="$DEMO_DIR/demo.tar" \
  -o type=local,dest="$DEMO_DIR/rootfs"

step "rebuilding: every step is a cache hit"
$B build testdata/demo -t demo:v1 --build-arg GREETING=hello

step "builder images"
$B images

step "image config"
$B inspect demo:v1 | sed -n '/"config": {/,/^  }/p' | grep -E '"(User|WorkingDir|Entrypoint|Cmd|Env|ExposedPorts|Labels|Healthcheck)"' -A3 | head -40

step "the exported rootfs ($DEMO_DIR/rootfs/srv/app)"
ls -ln "$DEMO_DIR/rootfs/srv/app"
echo "message.txt: $(cat "$DEMO_DIR/rootfs/srv/app/message.txt")"
echo
echo "OCI archive: $DEMO_DIR/demo.tar (try: skopeo inspect oci-archive:$DEMO_DIR/demo.tar)"

#!/bin/sh
# Writes a greeting made at build time, inside the RUN sandbox.
echo "$1 from $(hostname), built as uid $(id -u) with $(ls /bin | wc -l) busybox applets"

#!/bin/sh
# Writes a greeting made at build time, inside the RUN sandbox.
echo "$1 from builder, built as uid $(id -u) on $(hostname) with $(ls /bin | wc -l) busybox applets"

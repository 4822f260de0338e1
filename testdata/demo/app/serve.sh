#!/bin/sh
# The image's entrypoint: print the message made at build time.
cat "$1"

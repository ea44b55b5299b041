#!/bin/sh
# Stops the portal; leaves a marker so that tests can see stop ran.
set -eu
echo "stopped $DEPLOYCTL_INSTANCE" > "$MARKER"

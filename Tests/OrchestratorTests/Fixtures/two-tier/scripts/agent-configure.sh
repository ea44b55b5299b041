#!/bin/sh
# Joins a worker's agent to the portal.
set -eu
if [ "$FAIL" = true ]; then
    echo "agent on $DEPLOYCTL_INSTANCE cannot reach the portal at $PORTAL_URL" >&2
    exit 7
fi
echo "$DEPLOYCTL_INSTANCE front=$FRONT portal=$PORTAL_URL" >> "$ROOT/agents.txt"
echo "JOINED=$DEPLOYCTL_INSTANCE" >> "$DEPLOYCTL_OUTPUTS"

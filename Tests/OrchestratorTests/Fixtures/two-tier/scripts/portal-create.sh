#!/bin/sh
# Creates the portal: records the greeting, checks the secret arrived, reports the portal's URL.
set -eu
printf '%s from %s\n' "$GREETING" "$(hostname)" > portal.txt
[ -n "$API_PASSWORD" ] || { echo "no API password" >&2; exit 2; }
set -- $SSH_CONNECTION
echo "URL=http://$3:8080/" >> "$DEPLOYCTL_OUTPUTS"

#!/bin/sh
# Runs on the portal's host when an agent joins or leaves (relationship add_source / remove_source).
set -eu
echo "$EVENT $DEPLOYCTL_SOURCE from $DEPLOYCTL_SOURCE_ADDRESS on $DEPLOYCTL_INSTANCE" >> "$ROOT/members.txt"

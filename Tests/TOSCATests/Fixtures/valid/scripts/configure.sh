#!/bin/sh
# Placeholder implementation for the golden fixtures.
exit 0

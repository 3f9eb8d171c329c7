#!/bin/sh
# Entrypoint of the compose `prometheus` service. Prometheus does not expand environment
# variables in its config, so this writes the two files prometheus.yml reads, from the values
# compose passes (taken from .env), then runs Prometheus with compose's `command:` arguments.
# Runs with the official image's /bin/sh (busybox) and with Debian's.
set -eu
dir=/run/izzati    # a tmpfs (docker-compose.yml): the API key is never written to a disk
umask 077          # Prometheus runs as the same user (nobody); no one else reads the key
printf '[{"targets": ["web:%s"]}]\n' "${IZZATI_PORT:-5020}" >"$dir/web.json"
printf '%s' "${IZZATI_API_KEY:-}" >"$dir/api-key"    # empty when the web has no key
exec /bin/prometheus "$@"

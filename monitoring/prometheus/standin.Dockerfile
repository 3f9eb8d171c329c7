# A LOCAL STAND-IN for the prom/prometheus image, for machines that cannot pull images (the test
# machines: no registry is reachable there). scripts/docker-setup builds it from Debian's
# `prometheus` package and tags it with the name docker-compose.yml uses; with a registry you
# never need it, compose pulls the real image. Bookworm's package is Prometheus 2.42.
#
# Laid out like the official image, so the compose file runs either unchanged: the binary at
# /bin/prometheus, /bin/sh, data in /prometheus, user nobody (65534), port 9090.
ARG BASE=python:3.12-slim
FROM ${BASE}
# Unpinned on purpose: the stand-in takes whatever version the base's Debian release ships.
# policy-rc.d: the package's postinst must not start a daemon inside the build.
# hadolint ignore=DL3008
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends prometheus \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && mkdir -p /prometheus && chown 65534:65534 /prometheus
USER 65534:65534
WORKDIR /prometheus
VOLUME ["/prometheus"]
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]

# izzati container image: `docker run IMAGE` serves the built-in example on port 5020,
# `docker run IMAGE worker` runs a queue worker. Settings are IZZATI_* environment variables.
#
# Your code and its packages: CALLBACKS names a directory of the build context (default
# `callbacks`). It is copied to /callbacks (on IZZATI_CALLBACK_PATH), and its requirements.txt,
# when it has one, is installed into the image's virtualenv:
#   docker build --build-arg CALLBACKS=examples/iris -t iris .
#   docker run -e IZZATI_CALLBACK=iris:Classifier iris
# docker-compose.yml passes IZZATI_CALLBACKS from .env as CALLBACKS.
ARG PYTHON_IMAGE=python:3.12-slim
ARG CALLBACKS=callbacks

# ---- builder: a virtualenv with the package and its Redis extra ----------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies (with the redis extra) first, from pyproject.toml alone: editing the code does
# not re-download them. Then the package itself, = `pip install ".[redis]"` in two layers.
COPY pyproject.toml README.md* ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['redis']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt
# The user's requirements before izzati's own code, so that editing izzati does not reinstall
# them either. `requirements.tx[t]` matches nothing when there is no such file (BuildKit copies
# nothing then); pyproject.toml is there so the COPY always has a source.
ARG CALLBACKS
COPY pyproject.toml ${CALLBACKS}/requirements.tx[t] /tmp/callbacks/
RUN if [ -f /tmp/callbacks/requirements.txt ]; then \
        pip install --no-cache-dir -r /tmp/callbacks/requirements.txt; \
    fi
COPY izzati ./izzati
RUN pip install --no-cache-dir --no-deps . \
  && python -I -c "import izzati, redis, uvicorn"

# ---- runtime: the venv and the app/ entrypoint, nothing else ---------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/srv \
    IZZATI_HOST=0.0.0.0 \
    IZZATI_PORT=5020 \
    IZZATI_JOB_DIR=/jobs \
    IZZATI_CALLBACK_PATH=/callbacks
# a regular user with a fixed uid (--system would warn: 10001 is above the system range);
# --no-log-init keeps a large uid from making a huge sparse /var/log/lastlog
RUN useradd --no-log-init --uid 10001 --user-group --create-home --home-dir /home/izzati \
        --shell /usr/sbin/nologin izzati \
 && mkdir -m 700 /jobs && chown 10001:10001 /jobs
COPY --from=builder /opt/venv /opt/venv
WORKDIR /srv
COPY app ./app
# the user's code (compose also mounts ./callbacks here, read-only, to edit without a rebuild)
ARG CALLBACKS
COPY ${CALLBACKS} /callbacks
USER 10001:10001
EXPOSE 5020
# Standard library only (no curl in the image); follows IZZATI_PORT. A worker container
# (`docker run IMAGE worker`) serves no HTTP: for it the check only says the process is up.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; w = b'worker' in open('/proc/1/cmdline', 'rb').read().split(bytes(1)); w or r.urlopen('http://127.0.0.1:%s/health' % os.environ.get('IZZATI_PORT', '5020'), timeout=4)"]
# Exec form: python gets SIGTERM directly (compose adds `init: true` as well).
ENTRYPOINT ["python", "-m", "app"]

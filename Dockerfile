# One image for all five agencies; the command picks the service:
#   docker build -t scfed:local .
#   docker run scfed:local scfed.services.ident        # or sib, cjis_iafis, lesc, ice_field
# BASE_IMAGE must be a Debian-based CPython 3.11+ image (apt-get in the builder, useradd in the
# final stage), the same in both stages so the venv's interpreter path exists at run time. A
# plain Debian with python3 and python3-venv will do (the smoke test builds from one made with
# debootstrap).
#
# WHEELHOUSE (optional) names a folder in the build context with wheels for every dependency
# and for setuptools: pip then installs from it alone, with neither PyPI nor a compiler
# (tests/deploy builds it on the host with `pip wheel`). By default pip uses PyPI.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ARG WHEELHOUSE=
# hnswlib is published as an sdist only: it is compiled here, without -march=native so the image
# runs on any x86-64 (or arm64) host, not only on the build machine's CPU.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HNSWLIB_NO_NATIVE=1
RUN if [ -z "$WHEELHOUSE" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends build-essential \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Without a wheelhouse this copies only pyproject.toml into /wheels, which pip then ignores.
COPY ${WHEELHOUSE:-pyproject.toml} /wheels/
# The runtime dependencies first, read from pyproject.toml alone, so that a change to the code
# does not rebuild hnswlib. No dev extras.
COPY pyproject.toml ./
RUN if [ -n "$WHEELHOUSE" ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels; fi \
    && python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY README.md ./
COPY scfed ./scfed
COPY proto ./proto
COPY services ./services
# A regular (not editable) install: the code lands in the venv's site-packages, compiled.
RUN if [ -n "$WHEELHOUSE" ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels; fi \
    && pip install . && pip check

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="scfed" \
      org.opencontainers.image.description="The Secure Communities federation, emulated: five agencies over gRPC"
RUN groupadd --system --gid 10001 scfed \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin scfed \
    && mkdir -p /data /app \
    && chown 10001:10001 /data
COPY --from=builder /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /opt/scfed/healthcheck.py
# Compose's one-shot `certs` service: the mutual-TLS certificates, one directory per agency.
COPY deploy/docker/issue_certs.py /opt/scfed/issue_certs.py
# SCFED_GRPC_HOST / SCFED_HTTP_HOST are federation-wide settings (README, Configuration): every
# service listens on all interfaces of the container. /data holds the SQLite files when no
# SCFED_DATABASE_URL is given; mount a volume there to keep them.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SCFED_DATA_DIR=/data \
    SCFED_GRPC_HOST=0.0.0.0 \
    SCFED_HTTP_HOST=0.0.0.0
# An empty working directory: `python -m` puts it first on sys.path, so nothing there may shadow
# the installed packages.
WORKDIR /app
USER 10001:10001
# gRPC 50051..50055 and HTTP 8081..8085: sib, cjis_iafis, ident, lesc, ice_field.
EXPOSE 50051 50052 50053 50054 50055 8081 8082 8083 8084 8085
# GET /readyz on the running service's HTTP port (found from its command line and settings).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/opt/scfed/healthcheck.py"]
ENTRYPOINT ["python", "-m"]
CMD ["scfed.services.sib"]

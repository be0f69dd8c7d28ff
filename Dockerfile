# The image of kubestellar-py's controllers: `docker build -t kubestellar-py:dev .`
#
# The base is pinned to an exact Python release and Debian suite; to pin by digest as well, build
# with --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The sources live in /app and the process runs there: `python -m cmd.kubestellar` needs the
# repository's `cmd` package ahead of the standard library's `cmd` module, which holds only for the
# working directory (first on sys.path under `python -m`), not for site-packages.
WORKDIR /app

# Dependencies first (their layer survives source changes), at the versions of requirements.lock.
# The sources in /app are compiled once here: with PYTHONDONTWRITEBYTECODE every start would
# otherwise compile them again (about 0.1 CPU-s per process).
COPY pyproject.toml setup.py requirements.lock ./
COPY apis/ apis/
COPY pkg/ pkg/
COPY cmd/ cmd/
COPY config/exports/ config/exports/
COPY config/kube-exports/ config/kube-exports/
RUN pip install -c requirements.lock . \
    && python -m compileall -q apis pkg cmd

# config/ holds the CRDs and kcp exports that `init` applies.
COPY config/ config/

RUN groupadd --system --gid 10001 kubestellar \
    && useradd --system --uid 10001 --gid kubestellar --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin kubestellar
USER 10001:10001

EXPOSE 10204
ENTRYPOINT ["python", "-m", "cmd.kubestellar"]
CMD ["start", "--kubeconfig", "/etc/kcp/admin.kubeconfig", "--server-bind-address", ":10204"]

# The image the in-cluster CronJob (deploy/) runs: hakit installed from its wheel, as a
# user would install it; nothing of the source tree is left in the image.
# Pin the base by digest where you build (no registry is reachable from where hakit is
# developed, so no digest here is one anyone checked):
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS wheel
COPY . /src
RUN pip wheel --no-cache-dir --no-deps -w /wheels /src

FROM ${PYTHON_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels && python -c "import hakit.cli, hakit.checks"
# The CronJob's user needs a passwd entry: ssh (host checks) refuses to run for a uid without one.
RUN echo 'hakit:x:65532:65532:hakit:/tmp:/usr/sbin/nologin' >> /etc/passwd && echo 'hakit:x:65532:' >> /etc/group
USER 65532:65532
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["hakit"]
CMD ["--help"]

# The image the in-cluster CronJob (deploy/) runs: hakit and its check suites.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/hakit
COPY pyproject.toml conftest.py ./
COPY hakit/ hakit/
COPY checks/ checks/
COPY fixtures/ fixtures/
COPY runbooks/ runbooks/
# Editable: hakit finds its check suites and runbooks beside the package.
RUN pip install --no-cache-dir -e . && python -c "import hakit.cli"
USER 65532:65532
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["hakit"]
CMD ["--help"]

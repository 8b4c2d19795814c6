# harborpy web node / worker image (used by docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY harborpy ./harborpy
COPY distribution ./distribution
COPY projects ./projects
COPY rbac ./rbac
COPY replication ./replication
COPY audit ./audit
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/harborpy harborpy \
    && mkdir -p /var/lib/harborpy && chown harborpy /var/lib/harborpy
USER harborpy
ENV HARBORPY_DATA=/var/lib/harborpy
EXPOSE 5000
CMD ["harborpy", "serve", "--listen", "0.0.0.0:5000"]

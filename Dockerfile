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
COPY proxycache ./proxycache
COPY audit ./audit
COPY jobs ./jobs
COPY api ./api
COPY console ./console
# python-ldap builds from source: a compiler and the LDAP/SASL headers for the build only.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libldap2-dev libsasl2-dev \
    && pip install --no-cache-dir . \
    && apt-get purge -y gcc && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/harborpy harborpy \
    && mkdir -p /var/lib/harborpy && chown harborpy /var/lib/harborpy
USER harborpy
ENV HARBORPY_DATA=/var/lib/harborpy
EXPOSE 5000
CMD ["harborpy", "serve", "--listen", "0.0.0.0:5000"]

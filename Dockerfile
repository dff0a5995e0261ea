# One image for every wxstream process: `wxstream ingress`, `wxstream worker`,
# `wxstream simulate` (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY agents ./agents
COPY tables ./tables
RUN pip install . && rm -rf /src

# Not root. The data directory exists in the image so that a volume mounted there starts
# out owned by this user.
RUN useradd --system --uid 10001 --home-dir /var/lib/wxstream --create-home wxstream
USER wxstream
WORKDIR /var/lib/wxstream
ENV WXSTREAM_DATA_DIR=/var/lib/wxstream

ENTRYPOINT ["wxstream"]
CMD ["--help"]

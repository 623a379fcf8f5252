# Diamond Bot as a container image: `docker build -t diamond-bot .`; how to run it is in the
# README (Running on a server). Checked by tests/test_deploy.py.
FROM python:3.11-slim-bookworm

# tini is PID 1 and reaps: Thespian's admin process leaves run.py's process group (setsid), and
# under a PID 1 that does not reap, its exited children would stay behind as zombies.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

# The bot's own user; the data dir (a volume) and its backups (mount one there) are where it writes.
RUN groupadd --system --gid 10001 diamondbot \
    && useradd --system --uid 10001 --gid diamondbot --home-dir /var/lib/diamondbot --no-create-home \
       --shell /usr/sbin/nologin diamondbot \
    && install -d -o diamondbot -g diamondbot -m 0700 /var/lib/diamondbot /var/backups/diamondbot

WORKDIR /opt/diamond-bot

# The Python layer: the project with what setup.cfg pins (neonize with its bundled Go library).
COPY setup.cfg pyproject.toml README.md run.py ./
COPY actors ./actors
COPY config ./config
COPY domain ./domain
COPY gateway ./gateway
COPY sandbox ./sandbox
COPY storage ./storage
COPY web ./web
RUN pip install --no-cache-dir . \
    && python -c "import neonize; print('neonize', neonize.__version__, 'runs offline')"

ENV DIAMONDBOT_BOT_DATA_DIR=/var/lib/diamondbot \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
VOLUME ["/var/lib/diamondbot"]
USER diamondbot:diamondbot

# No EXPOSE: the panel listens on 127.0.0.1 only. Run with --network host to reach it on the
# host's own loopback, behind a TLS reverse proxy for anything else (README).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('DIAMONDBOT_PANEL_PORT', '8080'), timeout=4)"]
# run.py stops everything within 10 s of SIGTERM: give `docker stop` more (--stop-timeout 20).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "python", "run.py"]
CMD []

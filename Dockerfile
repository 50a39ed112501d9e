# Build stage: the dependencies in a virtual environment, and the project's wheel.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies read from pyproject.toml alone: a change to the code reuses this layer, and
# the run stage's copy of it; only a change to pyproject.toml installs them again. The postgres
# and redis extras come too, so one image runs alone on SQLite or as a replica of several.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(*p['dependencies'], *p['optional-dependencies']['postgres'], *p['optional-dependencies']['redis'], sep='\n')" > requirements.txt \
    && /opt/venv/bin/pip install -r requirements.txt
COPY README.md LICENSE ./
COPY bot ./bot
COPY migrations ./migrations
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels .

# Run stage: the dependencies, then the wheel installed over them; no sources, no root.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin bot
COPY --from=build /opt/venv /opt/venv
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-deps --disable-pip-version-check /tmp/wheels/*.whl && rm -r /tmp/wheels
# The working directory is where the bot looks for .env and, by default, data/.
WORKDIR /app
RUN install -d -o bot -g bot -m 700 data
USER bot
# The SQLite database and the generated secret key live here: keep it on a volume.
VOLUME ["/app/data"]
# /healthz and /metrics on port 8080 of the container (not published unless you say so):
# the health check asks /healthz, which answers 503, failing the check, when the bot is not doing
# its job (Telegram not answering, checks or notifications stuck); `docker inspect` shows the
# problems it names. Its timeout leaves room for the command's start (it imports the settings,
# seconds on a busy host) and its own wait for an answer (bot.ops.probe.TIMEOUT): exceeded, Docker
# shows that alone, not the reason.
ENV HTTP_PORT=8080 HTTP_HOST=0.0.0.0
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["smsc-balance-bot", "health"]
CMD ["smsc-balance-bot"]

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 1000 bot

COPY pyproject.toml README.md alembic.ini ./
COPY bot ./bot
COPY migrations ./migrations
RUN pip install -e . && mkdir /app/data && chown bot:bot /app/data

USER bot
# The SQLite database and the generated secret key live here: keep it on a volume.
VOLUME ["/app/data"]
CMD ["python", "-m", "bot"]

FROM python:3.11-slim
WORKDIR /srv
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-cache-dir .
EXPOSE 8000
# Migrate, then serve; scale out with more containers (the API is stateless).
# WEB_CONCURRENCY is read by uvicorn (--workers) and by the app (shared rate limits when > 1)
ENV WEB_CONCURRENCY=2
CMD ["sh", "-c", "python -m app.cli migrate && uvicorn app.main:app --host 0.0.0.0 --port 8000 --workers $WEB_CONCURRENCY"]

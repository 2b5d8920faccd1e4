# One image for web, worker and beat (docker-compose.yml). Commands mirror `make run`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VAR_DIR=/app/var STATIC_ROOT=/app/staticfiles
WORKDIR /app
COPY pyproject.toml ./
COPY config ./config
COPY connector ./connector
COPY wizard ./wizard
COPY simulator ./simulator
RUN pip install --no-cache-dir .
COPY . .
# Static files are collected with throwaway development settings; nothing from /tmp/build stays.
RUN VAR_DIR=/tmp/build python manage.py collectstatic --noinput -v 0 && rm -rf /tmp/build
RUN useradd --create-home app && mkdir -p /app/var && chown -R app /app/var
USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]

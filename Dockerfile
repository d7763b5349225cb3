FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    VAR_DIR=/app/var

WORKDIR /app
RUN useradd --create-home --uid 1000 app
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir --upgrade pip
COPY . .
RUN pip install --no-cache-dir . \
    && mkdir -p /app/var && chown -R app:app /app/var \
    && DEBUG=1 SECRET_KEY=build python manage.py collectstatic --noinput -v 0

USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", "--timeout", "120"]

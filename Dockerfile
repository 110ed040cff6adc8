FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 STATIC_ROOT=/app/staticfiles
RUN apt-get update && apt-get install -y --no-install-recommends gcc libgl1 libglib2.0-0 make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DJANGO_SETTINGS_MODULE=portal.settings python manage.py collectstatic --noinput
RUN useradd --create-home portal && mkdir -p /var/lib/portal && chown portal /var/lib/portal
USER portal
EXPOSE 8000

FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY . .
ENV DJANGO_SETTINGS_MODULE=engage.settings
EXPOSE 8000

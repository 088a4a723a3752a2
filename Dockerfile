FROM python:3.11-slim
# The openssl command line tool is in this image (Debian's ca-certificates depends on it:
# `apt-cache depends ca-certificates`): smtp_injection/tls.py makes the listener's default
# self-signed certificate with it when ENGAGE_SMTP_TLS_CERT/KEY are not set.
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY . .
ENV DJANGO_SETTINGS_MODULE=engage.settings
EXPOSE 8000

"""The listener's STARTTLS context (SMTP-INJECTION.md §5.2, §5.4).

``ENGAGE_SMTP_TLS_CERT`` / ``ENGAGE_SMTP_TLS_KEY`` name PEM files. With both unset (the
development default) a self-signed ECDSA P-256 pair is made once under
``ENGAGE_VAR_DIR/smtp-tls/`` with the ``openssl`` command line tool (the key file mode
0600), the way ``engage/keys.py`` keeps the secrets there; clients must not verify it.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"


class TlsSetupError(Exception):
    """The certificate cannot be loaded or made; the message says which file and why."""


def self_signed_pair(directory: Path, *, hostname: str) -> tuple[Path, Path]:
    """``(cert, key)`` under ``directory``, made on the first call (ECDSA P-256, 10 years,
    CN and subjectAltName ``hostname``) and the same ever after. Raises TlsSetupError when
    ``openssl`` is missing or fails."""
    cert, key = directory / CERT_FILE, directory / KEY_FILE
    if cert.is_file() and key.is_file():
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsSetupError(
            "no ENGAGE_SMTP_TLS_CERT/ENGAGE_SMTP_TLS_KEY and no openssl to make a self-signed pair: set them"
        )
    directory.mkdir(parents=True, exist_ok=True)
    tmp_cert, tmp_key = directory / f".{CERT_FILE}.{os.getpid()}", directory / f".{KEY_FILE}.{os.getpid()}"
    command = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "3650", "-subj", f"/CN={hostname}", "-addext", f"subjectAltName=DNS:{hostname}",
        "-keyout", str(tmp_key), "-out", str(tmp_cert),
    ]  # fmt: skip
    old_umask = os.umask(0o077)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    finally:
        os.umask(old_umask)
    if result.returncode != 0:
        raise TlsSetupError(f"openssl could not make a self-signed certificate: {result.stderr.strip()[:500]}")
    os.replace(tmp_key, key)  # the key first: a cert without its key is never left alone
    os.replace(tmp_cert, cert)
    return cert, key


def tls_context(cert: Path | str, key: Path | str) -> ssl.SSLContext:
    """A server context for STARTTLS: TLS 1.2 or later (SparkPost refuses 1.0 and 1.1,
    SMTP-INJECTION.md §1.1), no client certificate asked. Raises TlsSetupError."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot load the SMTP certificate {cert} / key {key}: {exc}") from None
    return context

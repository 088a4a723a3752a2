"""Engage's pure core: everything that needs no database, network, clock or framework.

The substitution language (``language``), link scanning and rewriting (``links``), the
tracking-token codec (``tokens``), the tracking-domain rule (``domains``), engagement option
precedence (``options``), email addresses (``addresses``), header encoding (``headers``),
address-header templates (``address_templates``), MIME building (``mime``),
``email_rfc822`` parsing and tracking (``rfc822``), and the pure half of SMTP injection: the
``X-MSYS-API`` parser (``msys_api``), SMTP precedence (``smtp_settings``), the policy
interface (``smtp_policy``) and SMTP replies as values (``smtp_reply``).

Every input is an argument: no module here imports Django, Celery, psycopg, Redis or any
Engage app, reads settings or the environment, or does I/O. The apps depend on this package,
never the reverse; ``tests/core/test_purity.py`` and import-linter (``pyproject.toml``)
keep it so.
"""

"""Recipient data for rendering: one precedence rule and one key check.

Precedence, lowest to highest (SPEC B §4.2): transmission metadata < transmission
substitution_data < recipient metadata < recipient substitution_data. The merge is
shallow (top-level keys replace each other whole). The built-ins ``address``
(``{"email", "name"}``), ``email`` and ``return_path`` are set last so user data can
never override them.
"""

from __future__ import annotations

import re
from typing import Any

from .compiler import DYNAMIC_ROOTS, DYNAMIC_SOURCE_KEY

RESERVED_KEYS = frozenset(
    "and break do else elseif end false for function if in local nil not or each repeat "
    "return then true until while address email email_id env_from return_path".split()
)
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def build_context(
    *,
    tx_metadata: dict[str, Any] | None,
    tx_substitution_data: dict[str, Any] | None,
    rcpt_metadata: dict[str, Any] | None,
    rcpt_substitution_data: dict[str, Any] | None,
    address_email: str,
    address_name: str | None,
    return_path: str | None,
) -> dict[str, Any]:
    """Merge the four data sources for one recipient and add the built-ins.

    Dynamic content (``render_dynamic_content``) must come from the *transmission*
    substitution_data only, so its dynamic_* objects are also kept under a key no
    template can name.
    """
    ctx: dict[str, Any] = {}
    for source in (tx_metadata, tx_substitution_data, rcpt_metadata, rcpt_substitution_data):
        if source:
            ctx.update(source)
    ctx.pop(DYNAMIC_SOURCE_KEY, None)
    ctx["address"] = {"email": address_email, "name": address_name}
    ctx["email"] = address_email
    ctx["return_path"] = return_path
    tx = tx_substitution_data or {}
    ctx[DYNAMIC_SOURCE_KEY] = {k: tx.get(k) for k in DYNAMIC_ROOTS}
    return ctx


def reserved_key_problem(data: Any, *, field: str = "substitution_data") -> str | None:
    """Why ``data`` cannot be substitution data because of a reserved top-level key, or None.

    The message names the first such key: ``"substitution_data key 'email' is reserved: ..."``.
    Reserved (SPEC B §4.2): the Lua keywords of the language and the built-in per-recipient
    variables (``address``, ``email``, ``email_id``, ``env_from``, ``return_path``), which a
    key would otherwise shadow. Case-sensitive, like Lua. Non-objects give None (their type is
    the caller's check).
    """
    if not isinstance(data, dict):
        return None
    for key in data:
        if key in RESERVED_KEYS:
            return (
                f"{field} key '{key}' is reserved: language keywords and the built-in "
                "variables address, email, email_id, env_from and return_path cannot be keys"
            )
    return None


def validate_data_keys(obj: Any, *, field: str = "substitution_data") -> list[str]:
    """Return one error message per invalid top-level key of ``obj`` (empty when valid).

    Keys must be US-ASCII letters, digits and ``_``, not start with a digit, and not be a
    reserved word or a built-in variable name.
    """
    if obj is None:
        return []
    if not isinstance(obj, dict):
        return [f"{field} must be an object"]
    errors: list[str] = []
    for key in obj:
        if not isinstance(key, str) or not _KEY_RE.match(key):
            errors.append(
                f"{field} key '{key}' is invalid: use US-ASCII letters, digits and '_', not starting with a digit"
            )
        elif (problem := reserved_key_problem({key: None}, field=field)) is not None:
            errors.append(problem)
    return errors

#!/usr/bin/env python3
"""Builds Bastion's Secrets Manager document (a JSON object keyed by configuration names).

Keys we own are generated here in their documented formats; keys a provider issues (Stripe,
Telegram, Meta, Google, the LLM, a legacy HMAC key) are read from an operator-written
KEY=VALUE file. With --current (the document stored today) it rotates: `--rotate JWT_KEYS`
puts a new key first and keeps the old ones as verify-only, and everything else is kept.

The document goes to stdout, which must not be a terminal; infra/put-secret pipes it straight
into `aws secretsmanager put-secret-value`. A new admin key's plaintext is written to a 0600
file, never printed. Nothing here talks to the network.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import time
from pathlib import Path

GENERATED = ("JWT_KEYS", "PASSWORD_PEPPER", "EXEC_SANDBOX_KEY", "ADMIN_KEYS")
# Generated per platform, only when that platform's provider credential is supplied (the code
# refuses half a platform: a webhook secret without the token to answer with).
PLATFORM_GENERATED = {
    "TELEGRAM_WEBHOOK_SECRET": "TELEGRAM_BOT_TOKEN",
    "FACEBOOK_VERIFY_TOKEN": "FACEBOOK_APP_SECRET",
}
PROVIDED = (
    "TELEGRAM_BOT_TOKEN",
    "FACEBOOK_APP_SECRET",
    "FACEBOOK_PAGE_ACCESS_TOKEN",
    "STRIPE_WEBHOOK_SECRETS",
    "GOOGLE_CLIENT_SECRET",
    "LLM_API_KEY",
    "LEGACY_PASSWORD_HMAC_KEY",
)
ALL_KEYS = frozenset(GENERATED) | frozenset(PLATFORM_GENERATED) | frozenset(PROVIDED)
ROTATABLE = ("JWT_KEYS", "PASSWORD_PEPPER", "ADMIN_KEYS", "TELEGRAM_WEBHOOK_SECRET",
             "FACEBOOK_VERIFY_TOKEN")
KEEP_VERIFY_ONLY = 2  # old entries kept after a rotation, besides the new current one


class DocumentError(ValueError):
    """A problem with the inputs; the message names keys, never values."""


def b64_key(n: int = 32) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def url_token(n: int = 32) -> str:
    return secrets.token_urlsafe(n)


def new_jwt_entry(now: float) -> str:
    kid = "k" + time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
    return f"{kid}:{b64_key()}"


def new_admin_key(name: str) -> tuple[str, str]:
    """(plaintext adm_ key, `name:sha256hex` entry)."""
    key = "adm_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return key, f"{name}:{hashlib.sha256(key.encode()).hexdigest()}"


def entries(value: str) -> list[str]:
    return [e.strip() for e in value.split(",") if e.strip()]


def read_provided(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise DocumentError(f"{path}:{n}: expected KEY=VALUE")
        k, v = line.split("=", 1)
        k, v = k.strip(), v.strip()
        if k not in PROVIDED:
            raise DocumentError(f"{path}:{n}: {k} is not a provider-issued key ({', '.join(PROVIDED)})")
        if not v:
            raise DocumentError(f"{path}:{n}: {k} is empty; leave the line out to turn it off")
        out[k] = v
    return out


def rotate(key: str, current: str, now: float) -> tuple[str, str | None]:
    """(new value, admin plaintext if one was made)."""
    old = entries(current)
    if key == "JWT_KEYS":
        return ",".join([new_jwt_entry(now)] + old[:KEEP_VERIFY_ONLY]), None
    if key == "PASSWORD_PEPPER":
        versions = [int(e.split(":", 1)[0]) for e in old]
        nxt = max(versions, default=0) + 1
        if nxt > 255:
            raise DocumentError("PASSWORD_PEPPER: versions are exhausted (1..=255)")
        # Every old pepper stays: stored hashes name their version and are upgraded at login.
        return ",".join([f"{nxt}:{b64_key()}"] + old), None
    if key == "ADMIN_KEYS":
        plain, entry = new_admin_key("ops" + time.strftime("%Y%m%d", time.gmtime(now)))
        return ",".join([entry] + old[:KEEP_VERIFY_ONLY]), plain
    if key in ("TELEGRAM_WEBHOOK_SECRET", "FACEBOOK_VERIFY_TOKEN"):
        # One value at a time on the platform's side: re-register the webhook right after.
        return url_token(), None
    raise DocumentError(f"{key} cannot be rotated here ({', '.join(ROTATABLE)} can)")


def build(
    provided: dict[str, str],
    current: dict[str, str] | None = None,
    rotate_keys: tuple[str, ...] = (),
    now: float | None = None,
) -> tuple[dict[str, str], str | None]:
    """(document, admin key plaintext when a new admin key was made)."""
    now = time.time() if now is None else now
    admin_plain: str | None = None
    if current is not None:
        unknown = sorted(set(current) - ALL_KEYS)
        if unknown:
            raise DocumentError(f"the current document has unknown keys: {unknown}")
        doc = dict(current)
        doc.update(provided)
        for key in rotate_keys:
            if key not in doc:
                raise DocumentError(f"{key} is not in the current document")
            doc[key], plain = rotate(key, doc[key], now)
            admin_plain = plain or admin_plain
    else:
        if rotate_keys:
            raise DocumentError("--rotate needs --current")
        admin_plain, admin_entry = new_admin_key("ops")
        doc = {
            "JWT_KEYS": new_jwt_entry(now),
            "PASSWORD_PEPPER": f"1:{b64_key()}",
            "EXEC_SANDBOX_KEY": b64_key(),
            "ADMIN_KEYS": admin_entry,
        }
        doc.update(provided)
    for generated, needs in PLATFORM_GENERATED.items():
        if needs in doc and generated not in doc:
            doc[generated] = url_token()
        if needs not in doc:
            doc.pop(generated, None)
    pairs = {"TELEGRAM_BOT_TOKEN": "TELEGRAM_WEBHOOK_SECRET",
             "FACEBOOK_PAGE_ACCESS_TOKEN": "FACEBOOK_APP_SECRET"}
    for a, b in pairs.items():
        if (a in doc) != (b in doc):
            raise DocumentError(f"{a} and {b} go together: supply both or neither")
    return dict(sorted(doc.items())), admin_plain


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--provided", type=Path, help="KEY=VALUE file of provider-issued secrets")
    p.add_argument("--current", type=Path, help="the stored document (JSON), to keep or rotate")
    p.add_argument("--rotate", action="append", default=[], choices=ROTATABLE)
    p.add_argument("--admin-key-out", type=Path, default=Path(".bastion/admin-key"),
                   help="where a new admin key's plaintext goes (mode 0600)")
    args = p.parse_args(argv)
    if sys.stdout.isatty():
        print("refusing to print a secret document to a terminal; pipe it (infra/put-secret)",
              file=sys.stderr)
        return 2
    try:
        current = json.loads(args.current.read_text()) if args.current else None
        doc, admin_plain = build(read_provided(args.provided), current, tuple(args.rotate))
    except (DocumentError, json.JSONDecodeError, OSError) as e:
        print(f"secret document: {e}", file=sys.stderr)
        return 1
    if admin_plain is not None:
        args.admin_key_out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(args.admin_key_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(admin_plain + "\n")
        print(f"new admin key written to {args.admin_key_out} (mode 0600)", file=sys.stderr)
    json.dump(doc, sys.stdout)
    print(f"secret document keys: {', '.join(doc)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Builds Bastion's Secrets Manager document (a JSON object keyed by configuration names).

Keys we own are generated here in their documented formats; keys a provider issues (Stripe,
Telegram, Meta, Google, the LLM, a legacy HMAC key) are read from an operator-written
KEY=VALUE file. With --current (the document stored today) it keeps every value and rotates
in two steps without downtime: `--rotate JWT_KEYS` adds a verify-only key, `--promote
JWT_KEYS` (one refresh interval later) makes it current, `--retire JWT_KEYS` (once old access
tokens expired) drops the old one.

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
PROMOTABLE = ("JWT_KEYS", "PASSWORD_PEPPER")
RETIRABLE = ("JWT_KEYS", "ADMIN_KEYS")


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
    """(new value, admin plaintext if one was made). Signing keys and peppers are added second,
    verify-only: every instance learns them within one refresh before `promote` makes them
    current, so no instance ever meets a token or hash made with a key it does not know."""
    old = entries(current)
    if key == "JWT_KEYS":
        return ",".join(old[:1] + [new_jwt_entry(now)] + old[1:]), None
    if key == "PASSWORD_PEPPER":
        versions = [int(e.split(":", 1)[0]) for e in old]
        nxt = max(versions, default=0) + 1
        if nxt > 255:
            raise DocumentError("PASSWORD_PEPPER: versions are exhausted (1..=255)")
        return ",".join(old[:1] + [f"{nxt}:{b64_key()}"] + old[1:]), None
    if key == "ADMIN_KEYS":
        # Any listed admin key works: the new one first, the old one until `retire`.
        plain, entry = new_admin_key("ops" + time.strftime("%Y%m%d", time.gmtime(now)))
        return ",".join([entry] + old), plain
    if key in ("TELEGRAM_WEBHOOK_SECRET", "FACEBOOK_VERIFY_TOKEN"):
        # One value at a time on the platform's side: re-register the webhook right after.
        return url_token(), None
    raise DocumentError(f"{key} cannot be rotated here ({', '.join(ROTATABLE)} can)")


def promote(key: str, current: str) -> str:
    """Makes the verify-only entry `rotate` added the current one (the old stays verify-only)."""
    if key not in PROMOTABLE:
        raise DocumentError(f"{key} has no verify-only entry to promote")
    old = entries(current)
    if len(old) < 2:
        raise DocumentError(f"{key} has a single entry: rotate first")
    return ",".join([old[1], old[0]] + old[2:])


def retire(key: str, current: str) -> str:
    """Keeps only the current entry (after access tokens signed by the old key expired).
    Peppers are never retired: stored hashes name their version and upgrade at login."""
    if key not in RETIRABLE:
        raise DocumentError(f"{key} cannot be retired ({', '.join(RETIRABLE)} can)")
    return entries(current)[0]


def build(
    provided: dict[str, str],
    current: dict[str, str] | None = None,
    rotate_keys: tuple[str, ...] = (),
    now: float | None = None,
    promote_keys: tuple[str, ...] = (),
    retire_keys: tuple[str, ...] = (),
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
        for key in promote_keys:
            doc[key] = promote(key, doc.get(key, ""))
        for key in retire_keys:
            doc[key] = retire(key, doc.get(key, ""))
    else:
        if rotate_keys or promote_keys or retire_keys:
            raise DocumentError("--rotate, --promote and --retire need --current")
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
    p.add_argument("--rotate", action="append", default=[], choices=ROTATABLE,
                   help="add a new key (verify-only for JWT_KEYS and PASSWORD_PEPPER)")
    p.add_argument("--promote", action="append", default=[], choices=PROMOTABLE,
                   help="make the verify-only key current (after one SECRET_REFRESH_SECS)")
    p.add_argument("--retire", action="append", default=[], choices=RETIRABLE,
                   help="drop every entry but the current one")
    p.add_argument("--admin-key-out", type=Path, default=Path(".bastion/admin-key"),
                   help="where a new admin key's plaintext goes (mode 0600)")
    args = p.parse_args(argv)
    if sys.stdout.isatty():
        print("refusing to print a secret document to a terminal; pipe it (infra/put-secret)",
              file=sys.stderr)
        return 2
    try:
        current = json.loads(args.current.read_text()) if args.current else None
        doc, admin_plain = build(read_provided(args.provided), current, tuple(args.rotate),
                                 promote_keys=tuple(args.promote),
                                 retire_keys=tuple(args.retire))
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

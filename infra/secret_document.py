#!/usr/bin/env python3
"""Builds Bastion's two Secrets Manager documents (JSON objects keyed by configuration names):
the main one (auth, chat, webhooks) and exec's own, which holds only EXEC_SANDBOX_KEY and the
JWT verify keys so the function that runs untrusted code can read nothing that mints a token.

Keys we own are generated here in their documented formats (token keys are Ed25519 key pairs:
auth signs with JWT_SIGNING_KEYS, everyone verifies with JWT_VERIFY_KEYS); keys a provider
issues (Stripe, Telegram, Meta, Google, the LLM, a legacy HMAC key) are read from an
operator-written KEY=VALUE file. With --current (and --current-exec, the documents stored today)
it keeps every value and rotates in two steps without downtime: `--rotate JWT_SIGNING_KEYS` adds
a key pair that only verifies, `--promote JWT_SIGNING_KEYS` (one refresh interval later) makes
it sign, `--retire JWT_SIGNING_KEYS` (once old access tokens expired) drops the old pair. A
current document from before asymmetric keys (HS256 JWT_KEYS, EXEC_SANDBOX_KEY in the main
document) is migrated: JWT_KEYS is replaced by a new pair, EXEC_SANDBOX_KEY moves to exec's.

`{"main": {...}, "exec": {...}}` goes to stdout, which must not be a terminal; infra/put-secret
pipes each part straight into `aws secretsmanager put-secret-value`. A new admin key's plaintext
is written to a 0600 file, never printed. Nothing here talks to the network.
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

GENERATED = ("JWT_SIGNING_KEYS", "JWT_VERIFY_KEYS", "PASSWORD_PEPPER", "ADMIN_KEYS")
# exec's document: exactly these (exec refuses any other key; functions/exec/src/config.rs).
EXEC_KEYS = ("EXEC_SANDBOX_KEY", "JWT_VERIFY_KEYS")
# Read from a current document only to migrate them; never written to the main document.
MIGRATED = ("JWT_KEYS", "EXEC_SANDBOX_KEY")
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
    "LLM_FALLBACK_API_KEY",
    "LEGACY_PASSWORD_HMAC_KEY",
)
MAIN_KEYS = frozenset(GENERATED) | frozenset(PLATFORM_GENERATED) | frozenset(PROVIDED)
# Every name either document may hold (the code's SECRET_NAMES).
ALL_KEYS = MAIN_KEYS | frozenset(EXEC_KEYS)
ROTATABLE = ("JWT_SIGNING_KEYS", "PASSWORD_PEPPER", "ADMIN_KEYS", "TELEGRAM_WEBHOOK_SECRET",
             "FACEBOOK_VERIFY_TOKEN")
PROMOTABLE = ("JWT_SIGNING_KEYS", "PASSWORD_PEPPER")
RETIRABLE = ("JWT_SIGNING_KEYS", "ADMIN_KEYS")


class DocumentError(ValueError):
    """A problem with the inputs; the message names keys, never values."""


def b64_key(n: int = 32) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def url_token(n: int = 32) -> str:
    return secrets.token_urlsafe(n)


def new_jwt_pair(now: float) -> tuple[str, str]:
    """(JWT_SIGNING_KEYS entry, JWT_VERIFY_KEYS entry) of a fresh Ed25519 key pair, both
    `kid:base64` of 32 raw bytes (the private key seed, the public key)."""
    # cryptography's Ed25519 (OpenSSL) makes the pair: the seed comes from the OS CSPRNG and the
    # public key is derived, never hand-rolled here.
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import (
            Encoding, NoEncryption, PrivateFormat, PublicFormat)
    except ImportError as e:
        raise DocumentError("generating JWT key pairs needs the `cryptography` package "
                            "(pip install cryptography)") from e
    kid = "k" + time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return (f"{kid}:{base64.b64encode(seed).decode()}",
            f"{kid}:{base64.b64encode(public).decode()}")


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


def second(current: str, entry: str) -> str:
    old = entries(current)
    return ",".join(old[:1] + [entry] + old[1:])


def rotate_jwt(doc: dict[str, str], now: float) -> None:
    """Adds a key pair second in both lists: every instance knows its public key within one
    refresh before `promote` makes it sign, so none meets a token signed by a key it lacks."""
    signing, public = new_jwt_pair(now)
    doc["JWT_SIGNING_KEYS"] = second(doc["JWT_SIGNING_KEYS"], signing)
    doc["JWT_VERIFY_KEYS"] = second(doc.get("JWT_VERIFY_KEYS", ""), public)


def rotate(key: str, current: str, now: float) -> tuple[str, str | None]:
    """(new value, admin plaintext if one was made). Peppers are added second, verify-only:
    every instance learns them within one refresh before `promote` makes them current."""
    old = entries(current)
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


def migrate(doc: dict[str, str], now: float) -> None:
    """A document from before asymmetric tokens: its HS256 JWT_KEYS becomes a new key pair (the
    old tokens die with it; access tokens live 15 minutes and refresh tokens are opaque)."""
    if "JWT_KEYS" in doc:
        del doc["JWT_KEYS"]
        if "JWT_SIGNING_KEYS" not in doc:
            doc["JWT_SIGNING_KEYS"], doc["JWT_VERIFY_KEYS"] = new_jwt_pair(now)
    if "JWT_SIGNING_KEYS" in doc and "JWT_VERIFY_KEYS" not in doc:
        raise DocumentError("JWT_SIGNING_KEYS without JWT_VERIFY_KEYS: the pair is incomplete")


def build(
    provided: dict[str, str],
    current: dict[str, str] | None = None,
    rotate_keys: tuple[str, ...] = (),
    now: float | None = None,
    promote_keys: tuple[str, ...] = (),
    retire_keys: tuple[str, ...] = (),
) -> tuple[dict[str, str], str | None]:
    """(main document, admin key plaintext when a new admin key was made). A current document's
    EXEC_SANDBOX_KEY stays in it here; `split` moves it to exec's document."""
    now = time.time() if now is None else now
    admin_plain: str | None = None
    if current is not None:
        unknown = sorted(set(current) - MAIN_KEYS - frozenset(MIGRATED))
        if unknown:
            raise DocumentError(f"the current document has unknown keys: {unknown}")
        doc = dict(current)
        doc.update(provided)
        migrate(doc, now)
        for key in rotate_keys:
            if key not in doc:
                raise DocumentError(f"{key} is not in the current document")
            if key == "JWT_SIGNING_KEYS":
                rotate_jwt(doc, now)
                continue
            doc[key], plain = rotate(key, doc[key], now)
            admin_plain = plain or admin_plain
        for key in promote_keys:
            doc[key] = promote(key, doc.get(key, ""))
            if key == "JWT_SIGNING_KEYS":
                doc["JWT_VERIFY_KEYS"] = promote(key, doc.get("JWT_VERIFY_KEYS", ""))
        for key in retire_keys:
            doc[key] = retire(key, doc.get(key, ""))
            if key == "JWT_SIGNING_KEYS":
                doc["JWT_VERIFY_KEYS"] = retire(key, doc.get("JWT_VERIFY_KEYS", ""))
    else:
        if rotate_keys or promote_keys or retire_keys:
            raise DocumentError("--rotate, --promote and --retire need --current")
        admin_plain, admin_entry = new_admin_key("ops")
        signing, public = new_jwt_pair(now)
        doc = {
            "JWT_SIGNING_KEYS": signing,
            "JWT_VERIFY_KEYS": public,
            "PASSWORD_PEPPER": f"1:{b64_key()}",
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


def is_placeholder(doc: dict[str, str] | None) -> bool:
    """The template's placeholder (a fresh stack's secret before put-secret ran)."""
    return doc is not None and set(doc) == {"placeholder"}


def split(main_doc: dict[str, str], current_exec: dict[str, str] | None
          ) -> tuple[dict[str, str], dict[str, str]]:
    """(main document, exec's document). exec's EXEC_SANDBOX_KEY is kept from its current
    document, else moved from the main one (migration), else generated: it names every user's
    workspace, so it is never replaced while one exists. The verify keys are the main
    document's, so both change in the same run."""
    main_doc = dict(main_doc)
    moved = main_doc.pop("EXEC_SANDBOX_KEY", None)
    if is_placeholder(current_exec):
        current_exec = None
    if current_exec is not None:
        unknown = sorted(set(current_exec) - frozenset(EXEC_KEYS))
        if unknown:
            raise DocumentError(f"exec's current document has unknown keys: {unknown}")
    sandbox = (current_exec or {}).get("EXEC_SANDBOX_KEY") or moved or b64_key()
    exec_doc = {"EXEC_SANDBOX_KEY": sandbox, "JWT_VERIFY_KEYS": main_doc["JWT_VERIFY_KEYS"]}
    return main_doc, exec_doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--provided", type=Path, help="KEY=VALUE file of provider-issued secrets")
    p.add_argument("--current", type=Path, help="the stored document (JSON), to keep or rotate")
    p.add_argument("--current-exec", type=Path, help="exec's stored document (JSON), to keep")
    p.add_argument("--rotate", action="append", default=[], choices=ROTATABLE,
                   help="add a new key (verify-only for JWT_SIGNING_KEYS and PASSWORD_PEPPER)")
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
        current_exec = (json.loads(args.current_exec.read_text())
                        if args.current_exec else None)
        doc, admin_plain = build(read_provided(args.provided), current, tuple(args.rotate),
                                 promote_keys=tuple(args.promote),
                                 retire_keys=tuple(args.retire))
        doc, exec_doc = split(doc, current_exec)
    except (DocumentError, json.JSONDecodeError, OSError) as e:
        print(f"secret document: {e}", file=sys.stderr)
        return 1
    if admin_plain is not None:
        args.admin_key_out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(args.admin_key_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(admin_plain + "\n")
        print(f"new admin key written to {args.admin_key_out} (mode 0600)", file=sys.stderr)
    json.dump({"main": doc, "exec": exec_doc}, sys.stdout)
    print(f"secret document keys: {', '.join(doc)}; exec's: {', '.join(exec_doc)}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

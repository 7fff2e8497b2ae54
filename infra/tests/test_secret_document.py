"""The secret document generator, offline: formats, provider keys, rotation, and put-secret
driven against a stand-in `aws` that records what it was given."""

import base64
import hashlib
import io
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import drift  # noqa: E402
import secret_document as sd  # noqa: E402

NOW = 1_800_000_000.0


def decoded_len(b64: str) -> int:
    return len(base64.b64decode(b64, validate=True))


def public_of(signing_entry: str) -> str:
    """The verify entry of a signing entry, derived with the same library the code trusts."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    kid, seed = signing_entry.split(":")
    public = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed)).public_key()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"{kid}:{base64.b64encode(raw).decode()}"


class Generation(unittest.TestCase):
    def test_the_generator_knows_exactly_the_contract_keys(self):
        self.assertEqual(sd.ALL_KEYS, drift.SECRET_KEYS)
        self.assertEqual(frozenset(sd.EXEC_KEYS), drift.DOCUMENT_KEYS["ExecSecret"])
        self.assertEqual(sd.MAIN_KEYS, drift.DOCUMENT_KEYS["Secret"])

    def test_a_fresh_document_holds_every_generated_key_in_its_documented_format(self):
        doc, admin = sd.build({}, now=NOW)
        self.assertEqual(
            sorted(doc), ["ADMIN_KEYS", "JWT_SIGNING_KEYS", "JWT_VERIFY_KEYS", "PASSWORD_PEPPER"]
        )
        kid, key = doc["JWT_SIGNING_KEYS"].split(":")
        self.assertEqual(kid, "k20270115080000")
        self.assertEqual(decoded_len(key), 32)
        self.assertEqual(doc["JWT_VERIFY_KEYS"], public_of(doc["JWT_SIGNING_KEYS"]))
        version, pepper = doc["PASSWORD_PEPPER"].split(":")
        self.assertEqual(version, "1")
        self.assertEqual(decoded_len(pepper), 32)
        main, exec_doc = sd.split(doc, None)
        self.assertEqual(main, doc)
        self.assertEqual(sorted(exec_doc), ["EXEC_SANDBOX_KEY", "JWT_VERIFY_KEYS"])
        self.assertEqual(decoded_len(exec_doc["EXEC_SANDBOX_KEY"]), 32)
        self.assertEqual(exec_doc["JWT_VERIFY_KEYS"], doc["JWT_VERIFY_KEYS"])
        name, digest = doc["ADMIN_KEYS"].split(":")
        self.assertEqual(name, "ops")
        self.assertTrue(admin.startswith("adm_"))
        self.assertEqual(digest, hashlib.sha256(admin.encode()).hexdigest())

    def test_two_documents_share_no_generated_value(self):
        a, _ = sd.build({}, now=NOW)
        b, _ = sd.build({}, now=NOW)
        for k in ("PASSWORD_PEPPER", "JWT_SIGNING_KEYS", "ADMIN_KEYS"):
            self.assertNotEqual(a[k], b[k], k)
        self.assertNotEqual(sd.split(a, None)[1]["EXEC_SANDBOX_KEY"],
                            sd.split(b, None)[1]["EXEC_SANDBOX_KEY"])

    def test_provider_keys_pass_through_and_turn_their_platform_on(self):
        provided = {
            "TELEGRAM_BOT_TOKEN": "123:abc",
            "FACEBOOK_APP_SECRET": "appsecret",
            "FACEBOOK_PAGE_ACCESS_TOKEN": "pagetoken",
            "STRIPE_WEBHOOK_SECRETS": "whsec_1",
        }
        doc, _ = sd.build(provided, now=NOW)
        for k, v in provided.items():
            self.assertEqual(doc[k], v)
        self.assertRegex(doc["TELEGRAM_WEBHOOK_SECRET"], r"^[A-Za-z0-9_-]{1,256}$")
        self.assertRegex(doc["FACEBOOK_VERIFY_TOKEN"], r"^[A-Za-z0-9_-]+$")

    def test_a_platform_without_its_provider_credential_gets_no_generated_secret(self):
        doc, _ = sd.build({"STRIPE_WEBHOOK_SECRETS": "whsec_1"}, now=NOW)
        self.assertNotIn("TELEGRAM_WEBHOOK_SECRET", doc)
        self.assertNotIn("FACEBOOK_VERIFY_TOKEN", doc)

    def test_half_a_messenger_platform_is_refused(self):
        with self.assertRaisesRegex(sd.DocumentError, "go together"):
            sd.build({"FACEBOOK_APP_SECRET": "s"}, now=NOW)

    def test_the_provided_file_refuses_unknown_and_empty_keys_without_echoing_values(self):
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "provided.env"
            f.write_text("JWT_KEYS=hunter2\n")
            with self.assertRaises(sd.DocumentError) as e:
                sd.read_provided(f)
            self.assertNotIn("hunter2", str(e.exception))
            f.write_text("# comment\nLLM_API_KEY=\n")
            with self.assertRaisesRegex(sd.DocumentError, "LLM_API_KEY is empty"):
                sd.read_provided(f)
            f.write_text("LLM_API_KEY = sk-1 \n")
            self.assertEqual(sd.read_provided(f), {"LLM_API_KEY": "sk-1"})


class Rotation(unittest.TestCase):
    def setUp(self):
        self.current, _ = sd.build({"STRIPE_WEBHOOK_SECRETS": "whsec_1"}, now=NOW - 86_400)

    def test_a_jwt_rotation_adds_a_verify_only_key_then_promotes_then_retires_it(self):
        added, admin = sd.build({}, self.current, ("JWT_SIGNING_KEYS",), now=NOW)
        keys = added["JWT_SIGNING_KEYS"].split(",")
        public = added["JWT_VERIFY_KEYS"].split(",")
        self.assertEqual(keys[0], self.current["JWT_SIGNING_KEYS"])
        self.assertTrue(keys[1].startswith("k20270115080000:"))
        self.assertEqual(public, [public_of(k) for k in keys])
        self.assertIsNone(admin)
        for k in ("PASSWORD_PEPPER", "ADMIN_KEYS", "STRIPE_WEBHOOK_SECRETS"):
            self.assertEqual(added[k], self.current[k], k)
        promoted, _ = sd.build({}, added, promote_keys=("JWT_SIGNING_KEYS",), now=NOW)
        self.assertEqual(promoted["JWT_SIGNING_KEYS"], f"{keys[1]},{keys[0]}")
        self.assertEqual(promoted["JWT_VERIFY_KEYS"], f"{public[1]},{public[0]}")
        retired, _ = sd.build({}, promoted, retire_keys=("JWT_SIGNING_KEYS",), now=NOW)
        self.assertEqual(retired["JWT_SIGNING_KEYS"], keys[1])
        self.assertEqual(retired["JWT_VERIFY_KEYS"], public[1])
        # exec's document follows the verify keys and keeps its sandbox key.
        _, exec_before = sd.split(self.current, None)
        _, exec_after = sd.split(retired, exec_before)
        self.assertEqual(exec_after, {"EXEC_SANDBOX_KEY": exec_before["EXEC_SANDBOX_KEY"],
                                      "JWT_VERIFY_KEYS": public[1]})

    def test_a_document_from_before_asymmetric_keys_is_migrated_keeping_the_sandbox_key(self):
        old = {"JWT_KEYS": "k1:" + sd.b64_key(), "PASSWORD_PEPPER": self.current["PASSWORD_PEPPER"],
               "EXEC_SANDBOX_KEY": "c2FuZGJveC1rZXktb2YtdGhlLW9sZC1kZXBsb3ltZW50IQ==",
               "ADMIN_KEYS": self.current["ADMIN_KEYS"]}
        doc, _ = sd.build({}, old, now=NOW)
        main, exec_doc = sd.split(doc, {"placeholder": "x"})
        self.assertEqual(sorted(main), ["ADMIN_KEYS", "JWT_SIGNING_KEYS", "JWT_VERIFY_KEYS",
                                        "PASSWORD_PEPPER"])
        self.assertEqual(main["JWT_VERIFY_KEYS"], public_of(main["JWT_SIGNING_KEYS"]))
        self.assertEqual(exec_doc, {"EXEC_SANDBOX_KEY": old["EXEC_SANDBOX_KEY"],
                                    "JWT_VERIFY_KEYS": main["JWT_VERIFY_KEYS"]})

    def test_execs_current_document_with_a_key_it_may_not_hold_is_refused(self):
        with self.assertRaisesRegex(sd.DocumentError, r"unknown keys: \['JWT_SIGNING_KEYS'\]"):
            sd.split(self.current, {"EXEC_SANDBOX_KEY": "x", "JWT_VERIFY_KEYS": "y",
                                    "JWT_SIGNING_KEYS": "z"})

    def test_promoting_a_single_key_is_refused(self):
        with self.assertRaisesRegex(sd.DocumentError, "rotate first"):
            sd.build({}, self.current, promote_keys=("JWT_SIGNING_KEYS",), now=NOW)

    def test_a_pepper_rotation_takes_the_next_version_and_keeps_every_old_one(self):
        once, _ = sd.build({}, self.current, ("PASSWORD_PEPPER",), now=NOW)
        self.assertEqual([e.split(":")[0] for e in once["PASSWORD_PEPPER"].split(",")],
                         ["1", "2"])
        once, _ = sd.build({}, once, promote_keys=("PASSWORD_PEPPER",), now=NOW)
        twice, _ = sd.build({}, once, ("PASSWORD_PEPPER",), now=NOW)
        twice, _ = sd.build({}, twice, promote_keys=("PASSWORD_PEPPER",), now=NOW)
        self.assertEqual([e.split(":")[0] for e in twice["PASSWORD_PEPPER"].split(",")],
                         ["3", "2", "1"])

    def test_an_admin_rotation_makes_a_new_key_and_keeps_the_old_hash(self):
        doc, admin = sd.build({}, self.current, ("ADMIN_KEYS",), now=NOW)
        entries = doc["ADMIN_KEYS"].split(",")
        self.assertEqual(entries[0], f"ops20270115:{hashlib.sha256(admin.encode()).hexdigest()}")
        self.assertEqual(entries[1], self.current["ADMIN_KEYS"])

    def test_a_current_document_with_unknown_keys_is_refused(self):
        with self.assertRaisesRegex(sd.DocumentError, r"unknown keys: \['placeholder'\]"):
            sd.build({}, {"placeholder": "x"}, ("JWT_SIGNING_KEYS",), now=NOW)

    def test_rotating_without_the_current_document_is_refused(self):
        with self.assertRaisesRegex(sd.DocumentError, "need --current"):
            sd.build({}, None, ("JWT_SIGNING_KEYS",), now=NOW)


class Command(unittest.TestCase):
    def test_the_generator_refuses_to_print_to_a_terminal(self):
        err = io.StringIO()
        with mock.patch.object(sys.stdout, "isatty", return_value=True), \
                mock.patch.object(sys, "stderr", err):
            self.assertEqual(sd.main([]), 2)
        self.assertIn("refusing", err.getvalue())

    def test_put_secret_stores_one_version_and_shows_no_secret(self):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            log = d / "aws.log"
            fake = d / "bin" / "aws"
            fake.parent.mkdir()
            # A stand-in for the AWS CLI: records argv and stdin, answers like the real one.
            fake.write_text(
                "#!/usr/bin/env python3\n"
                "import json, sys\n"
                f"log = open({str(log)!r}, 'a')\n"
                "stdin = sys.stdin.read() if 'put-secret-value' in sys.argv else ''\n"
                "log.write(json.dumps({'argv': sys.argv[1:], 'stdin': stdin}) + '\\n')\n"
                "print('version-1')\n"
            )
            fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
            provided = d / "provided.env"
            provided.write_text("TELEGRAM_BOT_TOKEN=123:tok-secret\n")
            env = dict(os.environ, PATH=f"{fake.parent}:{os.environ['PATH']}")
            out = subprocess.run(
                [str(HERE.parent / "put-secret"), "bastion/dev/config",
                 "bastion/dev/exec-config", "--provided", str(provided),
                 "--admin-key-out", str(d / "admin-key")],
                env=env, capture_output=True, text=True, check=True, cwd=d,
            )
            calls = [json.loads(line) for line in log.read_text().splitlines()]
            self.assertEqual(len(calls), 2)
            for call, secret_id in zip(calls, ["bastion/dev/exec-config", "bastion/dev/config"]):
                self.assertEqual(
                    call["argv"],
                    ["secretsmanager", "put-secret-value", "--secret-id", secret_id,
                     "--secret-string", "file:///dev/stdin", "--query", "VersionId",
                     "--output", "text"],
                )
            exec_doc = json.loads(calls[0]["stdin"])
            doc = json.loads(calls[1]["stdin"])
            self.assertEqual(doc["TELEGRAM_BOT_TOKEN"], "123:tok-secret")
            self.assertEqual(sorted(exec_doc), ["EXEC_SANDBOX_KEY", "JWT_VERIFY_KEYS"])
            self.assertEqual(exec_doc["JWT_VERIFY_KEYS"], doc["JWT_VERIFY_KEYS"])
            self.assertNotIn("JWT_SIGNING_KEYS", exec_doc)
            admin = (d / "admin-key").read_text().strip()
            self.assertEqual(stat.S_IMODE((d / "admin-key").stat().st_mode), 0o600)
            shown = out.stdout + out.stderr
            self.assertEqual(out.stdout, "version-1\nversion-1\n")
            for value in list(doc.values()) + list(exec_doc.values()) + [admin]:
                for part in re.split(r"[,:]", value):
                    if len(part) >= 16:
                        self.assertNotIn(part, shown)
            self.assertNotIn("tok-secret", shown)

    def test_put_secret_stores_nothing_when_the_generator_fails(self):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            log = d / "aws.log"
            fake = d / "bin" / "aws"
            fake.parent.mkdir()
            fake.write_text(f"#!/bin/sh\necho called >> {log}\n")
            fake.chmod(0o755)
            provided = d / "provided.env"
            provided.write_text("FACEBOOK_APP_SECRET=only-half\n")
            env = dict(os.environ, PATH=f"{fake.parent}:{os.environ['PATH']}")
            out = subprocess.run(
                [str(HERE.parent / "put-secret"), "bastion/dev/config",
                 "bastion/dev/exec-config", "--provided", str(provided)],
                env=env, capture_output=True, text=True, cwd=d,
            )
            self.assertEqual(out.returncode, 1)
            self.assertFalse(log.exists())
            self.assertNotIn("only-half", out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()

"""The web ACL per route: the core rule set's data-matching rules block on auth, admin and
webhooks and only count on chat and exec; path matches decode first; the log redacts query
strings. Each check is shown failing on the template as it was before (or a mutation)."""

import copy
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import drift  # noqa: E402
import waf  # noqa: E402

TEMPLATE = drift.load_template()


def acl(t: dict) -> dict:
    return t["Resources"]["WebAcl"]["Properties"]


def crs_overrides(t: dict) -> list:
    common = next(r for r in acl(t)["Rules"] if r["Name"] == "common")
    return common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]


def before_the_split(t: dict) -> None:
    """The ACL as it was: the core rule set whole, only the 8 KB body rule counted."""
    overrides = crs_overrides(t)
    overrides[:] = [o for o in overrides if o["Name"] == "SizeRestrictions_BODY"]
    acl(t)["Rules"] = [r for r in acl(t)["Rules"] if r["Name"] != "common-outside-agent-routes"]


class WafSplit(unittest.TestCase):
    def test_the_template_blocks_data_rules_on_auth_and_webhooks_and_counts_them_on_chat_and_exec(self):
        self.assertEqual(waf.all_waf_drifts(TEMPLATE), [])
        a = acl(TEMPLATE)
        self.assertEqual(
            waf.crs_verdict(a, "CrossSiteScripting_BODY", "CrossSiteScripting_Body", "/v1/auth/login"),
            "block",
        )
        self.assertEqual(
            waf.crs_verdict(a, "CrossSiteScripting_BODY", "CrossSiteScripting_Body", "/v1/chat"),
            "count",
        )
        self.assertEqual(
            waf.crs_verdict(
                a, "RestrictedExtensions_URIPATH", "RestrictedExtensions_URIPath",
                "/v1/exec/files/logs/app.log",
            ),
            "count",
        )

    def test_before_the_split_a_chat_message_with_a_script_tag_was_blocked(self):
        t = copy.deepcopy(TEMPLATE)
        before_the_split(t)
        drifts = waf.waf_split_drift(t)
        self.assertIn("WAF: CrossSiteScripting_BODY blocks agent traffic on /v1/chat", drifts)
        self.assertIn("WAF: GenericLFI_BODY blocks agent traffic on /v1/exec/run", drifts)
        self.assertIn("WAF: EC2MetaDataSSRF_BODY blocks agent traffic on /v1/exec/run", drifts)
        self.assertIn(
            "WAF: RestrictedExtensions_URIPATH blocks agent traffic on /v1/exec/files/logs/app.log",
            drifts,
        )
        self.assertNotIn("does not block", " ".join(drifts))

    def test_counting_a_rule_without_the_label_block_leaves_auth_unprotected(self):
        t = copy.deepcopy(TEMPLATE)
        acl(t)["Rules"] = [r for r in acl(t)["Rules"] if r["Name"] != "common-outside-agent-routes"]
        drifts = waf.waf_split_drift(t)
        self.assertIn("WAF: CrossSiteScripting_BODY does not block on /v1/auth/login", drifts)
        self.assertIn("WAF: GenericLFI_BODY does not block on /v1/webhooks/telegram", drifts)
        self.assertNotIn("blocks agent traffic", " ".join(drifts))

    def test_a_path_match_without_url_decode_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        rule = next(r for r in acl(t)["Rules"] if r["Name"] == "common-outside-agent-routes")
        regex = rule["Statement"]["AndStatement"]["Statements"][1]["NotStatement"]["Statement"]
        regex["RegexMatchStatement"]["TextTransformations"] = [{"Priority": 0, "Type": "LOWERCASE"}]
        self.assertIn(
            "WAF rule common-outside-agent-routes: a URI path match does not URL_DECODE before LOWERCASE",
            waf.waf_path_drift(t),
        )
        self.assertIn("WAF: CrossSiteScripting_BODY blocks agent traffic on /v1/%65xec/run", waf.waf_split_drift(t))

    def test_path_traversal_stays_blocked_on_agent_routes(self):
        t = copy.deepcopy(TEMPLATE)
        crs_overrides(t).append({"Name": "GenericLFI_URIPATH", "ActionToUse": {"Count": {}}})
        self.assertIn("WAF: GenericLFI_URIPATH does not block on /v1/exec/run", waf.waf_split_drift(t))

    def test_the_auth_rate_rule_decodes_the_path_before_lowercasing(self):
        t = copy.deepcopy(TEMPLATE)
        rule = next(r for r in acl(t)["Rules"] if r["Name"] == "rate-auth")
        match = rule["Statement"]["RateBasedStatement"]["ScopeDownStatement"]["ByteMatchStatement"]
        match["TextTransformations"] = [{"Priority": 0, "Type": "LOWERCASE"}]
        self.assertEqual(
            waf.waf_path_drift(t),
            ["WAF rule rate-auth: a URI path match does not URL_DECODE before LOWERCASE"],
        )


class WafLog(unittest.TestCase):
    def test_a_waf_log_keeping_query_strings_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        props = t["Resources"]["WebAclLogging"]["Properties"]
        props["RedactedFields"] = [f for f in props["RedactedFields"] if "QueryString" not in f]
        self.assertEqual(waf.waf_log_drift(t), ["WAF log: the query string is not redacted"])

    def test_a_waf_log_keeping_the_telegram_secret_header_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        props = t["Resources"]["WebAclLogging"]["Properties"]
        props["RedactedFields"] = [
            f for f in props["RedactedFields"]
            if f.get("SingleHeader", {}).get("Name") != "x-telegram-bot-api-secret-token"
        ]
        self.assertEqual(
            waf.waf_log_drift(t), ["WAF log: header x-telegram-bot-api-secret-token is not redacted"]
        )


if __name__ == "__main__":
    unittest.main()

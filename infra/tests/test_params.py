"""Template parameters hold the code's bounds, and function timeouts fit their routes'
integration timeouts (29 s buffered, chat's streamed 300 s) and the code's own deadlines; each
check shown failing on the template as it was."""

import copy
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import drift  # noqa: E402
import params  # noqa: E402

TEMPLATE = drift.load_template()
ROOT = drift.ROOT


class ParameterBounds(unittest.TestCase):
    def test_the_template_parameters_hold_the_codes_bounds(self):
        self.assertEqual(params.parameter_bounds_drift(TEMPLATE, ROOT), [])

    def test_the_bounds_are_read_from_the_code(self):
        self.assertEqual(params.code_bounds(ROOT)["EXEC_TIMEOUT_MS"], (100, 10_000))
        self.assertEqual(params.code_bounds(ROOT)["SECRET_REFRESH_SECS"], (60, 3600))
        self.assertEqual(params.code_bounds(ROOT)["LLM_TIMEOUT_SECS"], (1, 28))
        self.assertEqual(params.code_enumerations(ROOT)["STRIPE_LIVEMODE"], {"true", "false"})
        self.assertEqual(params.parameter_of(TEMPLATE)["EXEC_TIMEOUT_MS"], "ExecTimeoutMs")

    def test_an_exec_timeout_the_code_refuses_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Parameters"]["ExecTimeoutMs"]["MaxValue"] = 60000
        self.assertEqual(
            params.parameter_bounds_drift(t, ROOT),
            ["parameter ExecTimeoutMs (EXEC_TIMEOUT_MS): allows 100..60000, the code accepts 100..10000"],
        )

    def test_a_code_side_bound_change_is_drift(self):
        root = Path(tempfile.mkdtemp(prefix="bastion-params-"))
        for d in ("crates", "functions"):
            shutil.copytree(ROOT / d, root / d, ignore=shutil.ignore_patterns("target"))
        path = root / "functions/exec/src/config.rs"
        text = path.read_text()
        old = 'bounded(env, "EXEC_TIMEOUT_MS", 10_000, 100..=10_000)'
        self.assertIn(old, text)
        path.write_text(text.replace(old, 'bounded(env, "EXEC_TIMEOUT_MS", 5_000, 100..=5_000)'))
        self.assertEqual(
            params.parameter_bounds_drift(TEMPLATE, root),
            ["parameter ExecTimeoutMs (EXEC_TIMEOUT_MS): allows 100..10000, the code accepts 100..5000"],
        )

    def test_a_livemode_value_the_code_refuses_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Parameters"]["StripeLivemode"]["AllowedValues"] = ["true", "false", "yes"]
        self.assertEqual(
            params.parameter_bounds_drift(t, ROOT),
            [
                "parameter StripeLivemode (STRIPE_LIVEMODE): AllowedValues ['false', 'true', 'yes'], "
                "the code accepts ['false', 'true']"
            ],
        )

    def test_a_model_name_without_the_codes_pattern_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        del t["Parameters"]["LlmModel"]["AllowedPattern"]
        self.assertEqual(len(params.parameter_bounds_drift(t, ROOT)), 1)
        self.assertEqual(params.model_pattern(ROOT), "^[A-Za-z0-9./:@_-]{1,100}$")

    def test_the_fallback_parameters_hold_the_codes_provider_values_and_optional_model(self):
        self.assertEqual(
            params.code_enumerations(ROOT)["LLM_FALLBACK_PROVIDER"], {"openai", "anthropic"}
        )
        self.assertEqual(
            params.model_patterns(ROOT)["LLM_FALLBACK_MODEL"], "^([A-Za-z0-9./:@_-]{1,100})?$"
        )
        t = copy.deepcopy(TEMPLATE)
        t["Parameters"]["LlmFallbackModel"]["AllowedPattern"] = "^[A-Za-z0-9./:@_-]{1,100}$"
        t["Parameters"]["LlmFallbackProvider"]["AllowedValues"] = ["openai", "gemini"]
        self.assertEqual(
            params.parameter_bounds_drift(t, ROOT),
            [
                "parameter LlmFallbackModel (LLM_FALLBACK_MODEL): AllowedPattern "
                "'^[A-Za-z0-9./:@_-]{1,100}$', the code accepts '^([A-Za-z0-9./:@_-]{1,100})?$'",
                "parameter LlmFallbackProvider (LLM_FALLBACK_PROVIDER): AllowedValues "
                "['gemini', 'openai'], the code accepts ['anthropic', 'openai']",
            ],
        )


class Timeouts(unittest.TestCase):
    def test_every_routed_function_ends_within_its_routes_integration_timeout(self):
        self.assertEqual(params.timeout_drift(TEMPLATE, ROOT), [])

    def test_a_chat_timeout_past_its_streamed_integrations_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["ChatFunction"]["Properties"]["Timeout"] = 301
        self.assertEqual(
            params.timeout_drift(t, ROOT),
            ["ChatFunction: Timeout 301 s, but API Gateway gives up on its routes after 300 s"],
        )

    def test_a_streamed_chat_route_without_its_timeout_falls_back_to_29_seconds(self):
        t = copy.deepcopy(TEMPLATE)
        for methods in t["Resources"]["Api"]["Properties"]["DefinitionBody"]["paths"].values():
            for op in methods.values():
                op["x-amazon-apigateway-integration"].pop("timeoutInMillis", None)
        self.assertEqual(
            params.timeout_drift(t, ROOT),
            ["ChatFunction: Timeout 300 s, but API Gateway gives up on its routes after 29 s"],
        )

    def test_the_old_exec_and_webhooks_timeouts_are_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["ExecFunction"]["Properties"]["Timeout"] = 75
        t["Resources"]["WebhooksFunction"]["Properties"]["Timeout"] = 40
        self.assertEqual(
            params.timeout_drift(t, ROOT),
            [
                "WebhooksFunction: Timeout 40 s, but API Gateway gives up on its routes after 29 s",
                "ExecFunction: Timeout 75 s, but API Gateway gives up on its routes after 29 s",
            ],
        )

    def test_a_timeout_shorter_than_the_codes_deadline_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["ChatFunction"]["Properties"]["Timeout"] = 20
        agent_max = params.code_bounds(ROOT)["AGENT_DEADLINE_SECS"][1]
        self.assertEqual(
            params.timeout_drift(t, ROOT),
            [
                "ChatFunction: Timeout 20 s does not leave room after LLM_TIMEOUT_SECS's largest value (28 s)",
                f"ChatFunction: Timeout 20 s does not leave room after AGENT_DEADLINE_SECS's largest value ({agent_max} s)",
            ],
        )

    def test_an_agent_deadline_that_could_outlast_the_chat_timeout_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        agent_max = params.code_bounds(ROOT)["AGENT_DEADLINE_SECS"][1]
        t["Resources"]["ChatFunction"]["Properties"]["Timeout"] = agent_max
        self.assertIn(
            f"ChatFunction: Timeout {agent_max} s does not leave room after AGENT_DEADLINE_SECS's "
            f"largest value ({agent_max} s)",
            params.timeout_drift(t, ROOT),
        )


if __name__ == "__main__":
    unittest.main()

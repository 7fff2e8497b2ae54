"""Every chat method streams (InvokeWithResponseStream, STREAM, 300 s) because chat's binary
serves streamed responses, and no other method does; each way of getting it wrong is drift."""

import copy
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import drift  # noqa: E402
import streaming  # noqa: E402
import translated  # noqa: E402

TEMPLATE = drift.load_template()
ROOT = drift.ROOT


def _paths(template: dict) -> dict:
    return template["Resources"]["Api"]["Properties"]["DefinitionBody"]["paths"]


def _own_integration(template: dict, path: str) -> dict:
    """The integration of `path`'s method, unshared (the template's YAML aliases share one)."""
    op = _paths(template)[path]["x-amazon-apigateway-any-method"]
    op["x-amazon-apigateway-integration"] = copy.deepcopy(op["x-amazon-apigateway-integration"])
    return op["x-amazon-apigateway-integration"]


class Streaming(unittest.TestCase):
    def test_only_chats_binary_serves_streamed_responses(self):
        self.assertEqual(streaming.streaming_functions(ROOT), {"ChatFunction"})

    def test_every_chat_method_streams_and_the_others_do_not(self):
        methods = streaming.integrations(TEMPLATE)
        self.assertEqual(
            sorted((p, f) for p, _, f, _ in methods if f == "ChatFunction"),
            [("/chat", "ChatFunction"), ("/chat/{proxy+}", "ChatFunction")],
        )
        for path, method, fid, integration in methods:
            uri = streaming._sub_text(integration["uri"])
            if fid == "ChatFunction":
                self.assertEqual(integration.get("responseTransferMode"), "STREAM", path)
                self.assertEqual(integration.get("timeoutInMillis"), 300_000, path)
                self.assertTrue(uri.endswith("/2021-11-15/functions/${ChatFunction.Arn}/response-streaming-invocations"), path)
            else:
                self.assertNotIn("responseTransferMode", integration, path)
                self.assertNotIn("timeoutInMillis", integration, path)
                self.assertTrue(uri.endswith(f"/2015-03-31/functions/${{{fid}.Arn}}/invocations"), path)
        self.assertEqual(streaming.streaming_drift(TEMPLATE, ROOT), [])

    def test_sam_passes_the_streaming_settings_through_to_the_rest_api(self):
        out = translated.translate(TEMPLATE)
        apis = [r for r in out["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
        self.assertEqual(len(apis), 1)
        body = apis[0]["Properties"]["Body"]["paths"]
        for path in ("/chat", "/chat/{proxy+}"):
            integration = body[path]["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
            self.assertEqual(integration["responseTransferMode"], "STREAM")
            self.assertEqual(integration["timeoutInMillis"], 300_000)

    def test_a_chat_method_left_buffered_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        integration = _own_integration(t, "/chat/{proxy+}")
        del integration["responseTransferMode"]
        self.assertEqual(
            streaming.streaming_drift(t, ROOT),
            ["x-amazon-apigateway-any-method /chat/{proxy+} (ChatFunction): the function streams, but responseTransferMode is BUFFERED"],
        )

    def test_a_chat_method_on_the_buffered_invoke_uri_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        integration = _own_integration(t, "/chat")
        integration["uri"].value = (
            "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
            "${ChatFunction.Arn}/invocations"
        )
        self.assertEqual(
            streaming.streaming_drift(t, ROOT),
            [
                "x-amazon-apigateway-any-method /chat (ChatFunction): the function streams, but the URI is not "
                "lambda:path/2021-11-15/functions/${ChatFunction.Arn}/response-streaming-invocations"
            ],
        )

    def test_another_function_set_to_stream_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        _own_integration(t, "/exec/{proxy+}")["responseTransferMode"] = "STREAM"
        _own_integration(t, "/webhooks/{proxy+}")["timeoutInMillis"] = 60_000
        self.assertEqual(
            streaming.streaming_drift(t, ROOT),
            [
                "x-amazon-apigateway-any-method /webhooks/{proxy+} (WebhooksFunction): timeoutInMillis 60000 is outside 50..29000",
                "x-amazon-apigateway-any-method /exec/{proxy+} (ExecFunction): the function buffers, but responseTransferMode is STREAM",
            ],
        )

    def test_a_streamed_timeout_past_15_minutes_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        _own_integration(t, "/chat")["timeoutInMillis"] = 900_001
        self.assertEqual(
            streaming.streaming_drift(t, ROOT),
            ["x-amazon-apigateway-any-method /chat (ChatFunction): timeoutInMillis 900001 is outside 50..900000"],
        )

    def test_a_function_whose_main_starts_streaming_must_have_streamed_routes(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for pkg in streaming.FUNCTIONS.values():
                (root / pkg / "src").mkdir(parents=True)
                shutil.copy(ROOT / pkg / "src" / "main.rs", root / pkg / "src" / "main.rs")
            main = root / "functions/auth/src/main.rs"
            main.write_text(main.read_text().replace("startup::start(", "startup::start_streaming("))
            self.assertEqual(streaming.streaming_functions(root), {"ChatFunction", "AuthFunction"})
            drifts = streaming.streaming_drift(TEMPLATE, root)
        self.assertEqual(len(drifts), 4, drifts)
        self.assertIn(
            "x-amazon-apigateway-any-method /admin/{proxy+} (AuthFunction): the function streams, but responseTransferMode is BUFFERED",
            drifts,
        )

    def test_a_streaming_call_inside_a_test_module_does_not_count(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            main = root / "functions/exec/src/main.rs"
            main.parent.mkdir(parents=True)
            main.write_text(
                "fn main() { bastion_http::startup::start(init()); }\n"
                "#[cfg(test)]\nmod tests { fn f() { start_streaming(x); } }\n"
            )
            self.assertEqual(streaming.streaming_functions(root), set())


if __name__ == "__main__":
    unittest.main()

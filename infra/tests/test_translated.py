"""The translated template's API exposure: one stage, behind the WAF, the only one API Gateway
may invoke the functions through; and the old shape (SAM Api events, no OpenApiVersion) caught."""

import copy
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import drift  # noqa: E402
import translated  # noqa: E402

TEMPLATE = drift.load_template()
TRANSLATED = translated.translate(TEMPLATE)


def exec_api_event(t: dict) -> None:
    """The function-event routing the template used before: SAM writes its permission."""
    t["Resources"]["ExecFunction"]["Properties"]["Events"] = {
        "Exec": {
            "Type": "Api",
            "Properties": {
                "RestApiId": drift._Tag("Ref", "Api"),
                "Path": "/exec/{proxy+}",
                "Method": "ANY",
            },
        }
    }


class TranslatedTemplate(unittest.TestCase):
    def test_the_translated_template_has_one_stage_behind_the_waf_and_stage_scoped_permissions(self):
        self.assertEqual(translated.stages(TRANSLATED), {"${StageName}": "ApiStage"})
        self.assertEqual(translated.stage_drift(TRANSLATED), [])

    def test_every_api_permission_names_the_stage(self):
        arns = [
            translated._sub_text(r["Properties"]["SourceArn"])
            for r in TRANSLATED["Resources"].values()
            if r["Type"] == "AWS::Lambda::Permission"
        ]
        self.assertEqual(len(arns), 6)
        for arn in arns:
            self.assertIn(":${Api}/${StageName}/*/", arn)

    def test_without_an_openapi_version_sam_adds_a_stage_the_waf_does_not_cover(self):
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["Api"]["Properties"]["OpenApiVersion"]
        self.assertEqual(
            translated.stage_drift(translated.translate(t)),
            ["stage Stage exists beside ${StageName}", "stage Stage has no WAF association"],
        )

    def test_a_sam_api_event_grants_invoke_on_every_stage(self):
        t = copy.deepcopy(TEMPLATE)
        exec_api_event(t)
        self.assertEqual(
            translated.stage_drift(translated.translate(t)),
            ["permission ExecFunctionExecPermissionStage allows every stage"],
        )

    def test_the_old_template_shape_is_drift_on_both_counts(self):
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["Api"]["Properties"]["OpenApiVersion"]
        exec_api_event(t)
        drifts = translated.stage_drift(translated.translate(t))
        self.assertIn("stage Stage has no WAF association", drifts)
        self.assertIn("permission ExecFunctionExecPermissionStage allows every stage", drifts)

    def test_a_stage_without_its_waf_association_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["WebAclAssociation"]
        self.assertEqual(
            translated.stage_drift(translated.translate(t)),
            ["stage ${StageName} has no WAF association"],
        )

    def test_a_routed_path_without_a_permission_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["ChatApiPermission"]
        self.assertEqual(
            translated.stage_drift(translated.translate(t)),
            ["ChatFunction: the API routes /chat to it, no permission lets it be invoked there"],
        )

    def test_a_permission_on_another_stage_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        perm = t["Resources"]["ExecApiPermission"]["Properties"]
        perm["SourceArn"] = drift._Tag("Sub", perm["SourceArn"].value.replace("${StageName}", "test"))
        drifts = translated.stage_drift(translated.translate(t))
        self.assertIn("permission ExecApiPermission names stage test, which the API does not have", drifts)

    def test_translation_never_asks_aws_for_managed_policies(self):
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["ExecFunction"]["Properties"]["Policies"] = ["BastionNoSuchManagedPolicy"]
        del t["Resources"]["ExecFunction"]["Properties"]["Role"]
        with self.assertRaisesRegex(Exception, "must stay offline"):
            translated.translate(t)


class ApiGatewayAccount(unittest.TestCase):
    def test_the_account_wide_logging_role_is_optional_retained_and_waited_for(self):
        self.assertEqual(translated.account_drift(TRANSLATED), [])

    def test_an_unconditional_account_setting_is_drift_a_second_stack_would_overwrite_it(self):
        t = copy.deepcopy(TEMPLATE)
        for lid in ("ApiGatewayAccount", "ApiGatewayLogsRole"):
            del t["Resources"][lid]["Condition"]
            del t["Resources"][lid]["DeletionPolicy"]
        self.assertEqual(
            translated.account_drift(translated.translate(t)),
            [
                "ApiGatewayLogsRole: account-wide, but not under the ManagesApiGatewayAccount condition",
                "ApiGatewayLogsRole: account-wide, but deleted with this stack",
                "ApiGatewayAccount: account-wide, but not under the ManagesApiGatewayAccount condition",
                "ApiGatewayAccount: account-wide, but deleted with this stack",
            ],
        )

    def test_an_api_that_does_not_wait_for_the_account_setting_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["Api"]["DependsOn"]
        self.assertEqual(
            translated.account_drift(translated.translate(t)),
            ["Api: does not wait for the API Gateway account setting it logs through"],
        )


if __name__ == "__main__":
    unittest.main()

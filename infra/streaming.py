"""Which API Gateway methods stream, against the code that answers them.

A function whose `main.rs` serves through `start_streaming` (or `serve_streaming`) answers every
invocation as a Lambda streamed response (prelude, NUL delimiter, body), which only a streaming
integration reads: the `2021-11-15` `response-streaming-invocations` URI (InvokeWithResponseStream)
with `responseTransferMode: STREAM`. Every other function answers a proxy document, which only a
buffered integration reads: the `2015-03-31` `invocations` URI without STREAM. A method on the
wrong side answers 502 on every request; this check says which one it is.

A streamed integration's `timeoutInMillis` may reach 15 minutes (a buffered one stays at API
Gateway's 29 s, which params.timeout_drift enforces); `integration_timeout_secs` gives each
function's route limit for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sources import FUNCTIONS, strip_tests

STREAM_PATH = "lambda:path/2021-11-15/functions/${%s.Arn}/response-streaming-invocations"
BUFFERED_PATH = "lambda:path/2015-03-31/functions/${%s.Arn}/invocations"
# API Gateway's ceilings on an integration's timeoutInMillis, by transfer mode.
MAX_STREAM_TIMEOUT_MS = 900_000
MAX_BUFFERED_TIMEOUT_MS = 29_000

STREAMING_ENTRY = re.compile(r"\b(?:start_streaming|serve_streaming)\s*\(")


def streaming_functions(root: Path) -> set[str]:
    """Logical ids of the functions whose binary serves streamed responses."""
    out = set()
    for fid, pkg in FUNCTIONS.items():
        main = root / pkg / "src" / "main.rs"
        if main.is_file() and STREAMING_ENTRY.search(strip_tests(main.read_text())):
            out.add(fid)
    return out


def integrations(template: dict) -> list[tuple[str, str, str | None, dict]]:
    """(path, method, function invoked, integration) for every method of every API body."""
    out = []
    for res in template["Resources"].values():
        if res.get("Type") != "AWS::Serverless::Api":
            continue
        for path, methods in res["Properties"].get("DefinitionBody", {}).get("paths", {}).items():
            for method, op in methods.items():
                integration = op.get("x-amazon-apigateway-integration") if isinstance(op, dict) else None
                if integration is None:
                    continue
                out.append((path, method, _invoked(integration.get("uri")), integration))
    return out


def _sub_text(node: Any) -> str:
    if getattr(node, "tag", None) == "Sub":
        value = node.value
        return value if isinstance(value, str) else str(value[0])
    return node if isinstance(node, str) else ""


def _invoked(uri: Any) -> str | None:
    found = re.search(r"/functions/\$\{([A-Za-z0-9]+)\.Arn\}/", _sub_text(uri))
    return found.group(1) if found else None


def streaming_drift(template: dict, root: Path) -> list[str]:
    streams = streaming_functions(root)
    drifts = []
    for path, method, fid, integration in integrations(template):
        if fid is None:
            continue
        where = f"{method} {path} ({fid})"
        uri = _sub_text(integration.get("uri"))
        mode = integration.get("responseTransferMode", "BUFFERED")
        timeout = integration.get("timeoutInMillis")
        if fid in streams:
            if not uri.endswith(STREAM_PATH % fid):
                drifts.append(f"{where}: the function streams, but the URI is not {STREAM_PATH % fid}")
            if mode != "STREAM":
                drifts.append(f"{where}: the function streams, but responseTransferMode is {mode}")
            if timeout is not None and not 50 <= timeout <= MAX_STREAM_TIMEOUT_MS:
                drifts.append(f"{where}: timeoutInMillis {timeout} is outside 50..{MAX_STREAM_TIMEOUT_MS}")
        else:
            if not uri.endswith(BUFFERED_PATH % fid):
                drifts.append(f"{where}: the function buffers, but the URI is not {BUFFERED_PATH % fid}")
            if mode != "BUFFERED":
                drifts.append(f"{where}: the function buffers, but responseTransferMode is {mode}")
            if timeout is not None and not 50 <= timeout <= MAX_BUFFERED_TIMEOUT_MS:
                drifts.append(f"{where}: timeoutInMillis {timeout} is outside 50..{MAX_BUFFERED_TIMEOUT_MS}")
    return drifts


def integration_timeout_secs(template: dict, fid: str) -> float | None:
    """The shortest integration timeout of the methods routed to `fid` (the 29 s default where
    one sets none), or None when nothing routes to it."""
    limits = [
        (integration.get("timeoutInMillis") or MAX_BUFFERED_TIMEOUT_MS) / 1000
        for _, _, invoked, integration in integrations(template)
        if invoked == fid
    ]
    return min(limits) if limits else None

"""Tell someone when a run blocks or fails: one JSON POST to a webhook.

The payload carries the run, the stage that stopped, the reason and the command that
resumes it, plus a ``text`` line so chat webhooks (Slack, Teams, Mattermost) show it as is.
A notification that cannot be delivered is logged and recorded in the manifest; it never
fails the run (the run's own status and exit code are what schedulers act on).
"""
from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from typing import Any, Optional
from urllib.parse import unquote, urlsplit, urlunsplit

from .params import is_redacted_url

log = logging.getLogger(__name__)

ENV_WEBHOOK = "RUNBOOK_NOTIFY_WEBHOOK"


def webhook_url(params_url: Optional[str]) -> Optional[str]:
    """``$RUNBOOK_NOTIFY_WEBHOOK`` wins (it may carry a token and is never archived).

    A run archive keeps only ``scheme://host/…`` of a webhook URL (``RunParams.public_dict``), so a
    resumed run, which reads its archived parameters, notifies only through the environment."""
    env = os.environ.get(ENV_WEBHOOK)
    if env:
        return env
    if is_redacted_url(params_url):
        log.warning("the archived notify_webhook is redacted (%s); set $%s to be notified", params_url, ENV_WEBHOOK)
        return None
    return params_url


def redact_url(url: str) -> str:
    """scheme://host/… : what the manifest may show of a webhook URL (paths often hold tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/…"


def notify(url: str, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """POST ``payload`` as JSON; returns a record of the attempt (never raises)."""
    record: dict[str, Any] = {"webhook": redact_url(url), "delivered": False, "status": None, "error": None}
    body = json.dumps(payload, default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "backfill-runbook"}
    parts = urlsplit(url)
    if parts.username is not None:  # user:password@host: urllib cannot send it in the URL; HTTP basic auth can
        import base64

        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(userinfo).decode()
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        url = urlunsplit(parts._replace(netloc=host))
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            record["status"] = resp.status
            record["delivered"] = 200 <= resp.status < 300
    except urllib.error.HTTPError as e:
        record["status"] = e.code
        record["error"] = f"HTTP {e.code} {e.reason}"
    except Exception as e:  # URLError, timeouts, refused connections, bad hosts
        record["error"] = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
    if not record["delivered"]:
        log.warning("run notification to %s not delivered: %s", record["webhook"], record["error"])
    return record


def run_payload(manifest: dict, resume_command: str) -> dict[str, Any]:
    """What a blocked or failed run says about itself."""
    stage = manifest.get("stopped_at")
    reason = manifest.get("reason") or ""
    status = manifest.get("status")
    return {
        "text": f"runbook {manifest.get('run_id')} {status} at {stage}: {reason[:300]} — resume: {resume_command}",
        "run_id": manifest.get("run_id"),
        "run_name": manifest.get("run_name"),
        "status": status,
        "stage": stage,
        "reason": reason,
        "resume_command": resume_command,
        "archive": manifest.get("run_dir"),
    }

"""Tell someone when a run blocks or fails: one JSON POST to a webhook.

The payload carries the run, the stage that stopped, the reason and the command that
resumes it, plus a ``text`` line so chat webhooks (Slack, Teams, Mattermost) show it as is.
A notification that cannot be delivered is logged and recorded in the manifest; it never
fails the run (the run's own status and exit code are what schedulers act on).

A notification is bounded: it gets ``NOTIFY_DEADLINE_S`` seconds in all (connecting, sending and
reading the answer together), not only a timeout per socket read, which a server that drips one
byte at a time would keep resetting forever. The runbook sends it after the run is over: the
manifest is final and the warehouse lock released first (``nbcore.runbook``), so a slow webhook
holds nobody up.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
from typing import Any, Optional
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import UsageError
from .params import is_redacted_url, webhook_url_problem

log = logging.getLogger(__name__)

ENV_WEBHOOK = "RUNBOOK_NOTIFY_WEBHOOK"
NOTIFY_DEADLINE_S = 10.0  # the whole notification: connect, send, read the answer
READ_TIMEOUT_S = 5.0  # one socket operation (within the deadline)


def check_env_webhook() -> None:
    """``$RUNBOOK_NOTIFY_WEBHOOK`` is validated like the parameters, before a run starts (exit 2): a run
    must not find out at its end that it cannot notify."""
    env = os.environ.get(ENV_WEBHOOK)
    problem = webhook_url_problem(env) if env else None
    if problem:
        raise UsageError(f"${ENV_WEBHOOK}: {problem}")


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
    """scheme://host/… : what the manifest may show of a webhook URL (paths often hold tokens).
    Never raises: a URL that does not parse shows as its scheme only."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/…"
    except ValueError:
        return f"{url.partition('://')[0][:10]}://?/… (not a valid URL)"


def _post(url: str, body: bytes, record: dict[str, Any], timeout: float) -> None:
    """The POST itself (in a worker thread): fills ``record`` with the status or the error."""
    headers = {"Content-Type": "application/json", "User-Agent": "backfill-runbook"}
    try:
        parts = urlsplit(url)
        if parts.username is not None:  # user:password@host: urllib cannot send it in the URL; HTTP basic auth can
            import base64

            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(userinfo).decode()
            host = parts.netloc.rsplit("@", 1)[-1]
            url = urlunsplit(parts._replace(netloc=host))
        req = urllib.request.Request(url, data=body, method="POST", headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()  # the whole answer, so a 2xx means the hook took it
            record["status"] = resp.status
            record["delivered"] = 200 <= resp.status < 300
    except urllib.error.HTTPError as e:
        record["status"] = e.code
        record["error"] = f"HTTP {e.code} {e.reason}"
    except Exception as e:  # URLError, timeouts, refused connections, bad hosts, a URL urllib cannot take
        record["error"] = f"{type(e).__name__}: {getattr(e, 'reason', e)}"


def notify(url: str, payload: dict[str, Any], deadline: float = NOTIFY_DEADLINE_S) -> dict[str, Any]:
    """POST ``payload`` as JSON, giving up after ``deadline`` seconds in all; returns a record of the
    attempt (never raises: a notification never changes a run's outcome).

    The POST runs in a daemon thread that the caller waits for at most ``deadline`` seconds; a server
    still answering then is left behind (the thread ends with its socket's read timeout, or with the
    process), and the record says the deadline passed."""
    record: dict[str, Any] = {"webhook": redact_url(url), "delivered": False, "status": None, "error": None}
    problem = webhook_url_problem(url)
    if problem:
        record["error"] = f"not sent: {problem}"
    else:
        attempt: dict[str, Any] = {"delivered": False, "status": None, "error": None}
        body = json.dumps(payload, default=str).encode()
        worker = threading.Thread(target=_post, args=(url, body, attempt, min(READ_TIMEOUT_S, deadline)),
                                  name="runbook-notify", daemon=True)
        worker.start()
        worker.join(deadline)
        if worker.is_alive():
            record["error"] = f"no complete answer within the {deadline:g} s notification deadline; gave up"
        else:
            record.update(attempt)
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

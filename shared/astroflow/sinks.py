"""Sinks: where a pipeline sends what it made (an upload to a marshal, a chat message, a database
update, an e-mail), as one plug-in interface with one retry policy.

A runbook's "the spectrum is uploaded to the growth marshal", "push this plot to the slack
channel" and "sends out a summary e-mail" each become a :class:`Sink` named in the settings,
off by default.  A pipeline builds a :class:`Message` (a key that identifies it, fields,
attached files) and calls :func:`send`; the sink's ``url`` picks the transport:

``outbox``
    the local stand-in: the message is written to ``RUN/outbox/{sink}/{key}.json`` with its
    attachments beside it (``{key}.{name}``), nothing leaves the machine;
``http://`` / ``https://``
    a JSON POST (``{"sink", "key", "fields", "attachments": {name: base64}}``) with the header
    ``Idempotency-Key: {key}`` and, when ``secret_env`` names a set environment variable,
    ``Authorization: Bearer {value}``;
``smtp://host[:port]``
    an e-mail (fields ``to``, ``subject``, ``body``; attachments attached) through that server,
    logged in with ``secret_env`` as ``user:password`` when it is set.

The secret itself is never in a configuration, a log or a receipt: only the name of the
variable that holds it.  A transport failure is retried ``attempts`` times with exponential
back-off (``backoff_s``, doubling); the last failure raises :class:`SinkFailed`, an
:class:`~astroflow.errors.ItemError`, so the executor records it against the item and the run
goes on (the next run retries it; a delivered item is not sent again because its item is done).
"""

from __future__ import annotations

import base64
import json
import os
import smtplib
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from astroflow.atomic import write_bytes
from astroflow.errors import ItemError

OUTBOX = "outbox"


class Sink(BaseModel):
    """One destination, off by default."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="send to this sink (off by default)")
    url: str = Field(OUTBOX, description="'outbox' (the local stand-in, RUN/outbox/), http(s)://... or "
                     "smtp://host[:port]")
    secret_env: str | None = Field(None, description="name of the environment variable holding the token "
                                   "(http) or user:password (smtp); never the secret itself")
    attempts: int = Field(4, ge=1, description="tries before the failure is recorded")
    backoff_s: float = Field(2.0, ge=0, description="seconds before the second try, doubling after")
    timeout_s: float = Field(30.0, gt=0, description="seconds one try may take")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if url != OUTBOX and urlsplit(url).scheme not in ("http", "https", "smtp"):
            raise ValueError(f"url {url!r}: expected 'outbox', http(s)://... or smtp://host[:port]")
        return url


@dataclass(frozen=True)
class Message:
    """What is sent: ``key`` names it (a file name's stem, unique per sink and delivery)."""

    sink: str
    key: str
    fields: dict
    attachments: tuple[Path, ...] = field(default_factory=tuple)


class SinkFailed(ItemError):
    """A sink did not accept a message after all its tries."""


def _secret(sink: Sink) -> str | None:
    return os.environ.get(sink.secret_env) if sink.secret_env else None


def _to_outbox(sink: Sink, msg: Message, run_dir: Path) -> str:
    folder = Path(run_dir) / OUTBOX / msg.sink
    for path in msg.attachments:
        write_bytes(folder / f"{msg.key}.{Path(path).name}", Path(path).read_bytes())
    body = {"sink": msg.sink, "key": msg.key, "fields": msg.fields, "attachments": [Path(p).name for p in msg.attachments]}
    target = folder / f"{msg.key}.json"
    write_bytes(target, (json.dumps(body, indent=1, sort_keys=True, default=str) + "\n").encode())
    return str(target)


def _to_http(sink: Sink, msg: Message, run_dir: Path) -> str:
    body = {"sink": msg.sink, "key": msg.key, "fields": msg.fields,
            "attachments": {Path(p).name: base64.b64encode(Path(p).read_bytes()).decode() for p in msg.attachments}}
    headers = {"Content-Type": "application/json", "Idempotency-Key": msg.key}
    token = _secret(sink)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(sink.url, data=json.dumps(body, default=str).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=sink.timeout_s) as resp:  # raises HTTPError on 4xx/5xx
        answer = resp.read(2000).decode(errors="replace").strip()
        return answer or f"HTTP {resp.status}"


def _to_smtp(sink: Sink, msg: Message, run_dir: Path) -> str:
    parts = urlsplit(sink.url)
    email = EmailMessage()
    email["To"] = msg.fields.get("to", "")
    email["From"] = msg.fields.get("from", "astroflow")
    email["Subject"] = msg.fields.get("subject", msg.key)
    email.set_content(str(msg.fields.get("body", "")))
    for path in msg.attachments:
        email.add_attachment(Path(path).read_bytes(), maintype="application", subtype="octet-stream",
                             filename=Path(path).name)
    with smtplib.SMTP(parts.hostname, parts.port or 25, timeout=sink.timeout_s) as server:
        secret = _secret(sink)
        if secret:
            user, _, password = secret.partition(":")
            server.login(user, password)
        server.send_message(email)
    return f"mailed to {email['To']}"


def _transport(sink: Sink) -> Callable[[Sink, Message, Path], str]:
    if sink.url == OUTBOX:
        return _to_outbox
    return _to_smtp if urlsplit(sink.url).scheme == "smtp" else _to_http


def send(sink: Sink, msg: Message, run_dir: Path, *, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Deliver ``msg`` through ``sink``; returns the receipt (sink, key, url, attempts, answer).

    Raises :class:`SinkFailed` after the last try; a disabled sink is a programming error (the
    caller checks ``enabled``, so that nothing is built for a sink that is off).
    """
    if not sink.enabled:
        raise ValueError(f"sink {msg.sink} is disabled")
    transport = _transport(sink)
    where = OUTBOX if sink.url == OUTBOX else f"{urlsplit(sink.url).scheme}://{urlsplit(sink.url).hostname}"
    last = ""
    for attempt in range(1, sink.attempts + 1):
        try:
            answer = transport(sink, msg, run_dir)
            return {"sink": msg.sink, "key": msg.key, "url": where, "attempts": attempt, "answer": answer}
        except (OSError, urllib.error.URLError, smtplib.SMTPException) as exc:  # HTTPError is a URLError
            last = f"{type(exc).__name__}: {exc}"
            if attempt < sink.attempts:
                sleep(sink.backoff_s * 2 ** (attempt - 1))
    raise SinkFailed(f"sink {msg.sink} ({where}) refused {msg.key} after {sink.attempts} tries: {last}")

"""TLS and SASL for every Kafka client cpkmon creates, and a start-up check that fails fast and says why.

One place turns the ``CPKMON_KAFKA_*`` settings into client arguments, so that no client can be forgotten:
aiokafka producers, consumers and admin clients (:func:`aiokafka_kwargs`), kafka-python producers
(:func:`kafka_python_kwargs`, ``simulate`` and ``replay``) and the Faust app (:func:`faust_credentials`).

Why a pre-flight check (:func:`check_broker`): aiokafka reports a failed bootstrap as "Unable to bootstrap
from [...]" and logs the cause separately; a client whose group coordinator or partition leader is
unreachable retries forever. A wrong CA, a missing client certificate or a wrong password never heals by
retrying, so the worker, ``simulate`` and ``replay`` check first — the bootstrap broker *and* every broker
its metadata advertises, with the same TLS and SASL settings — and stop with one line naming the broker and
the cause; the API shows the same line as ``reason`` in ``/readyz``. An unreachable broker (refused, timed
out) is retried up to ``CPKMON_KAFKA_CONNECT_TIMEOUT_S``; TLS and SASL failures end the check at once.

Secrets: the password is a ``SecretStr`` in the settings and only leaves it in the keyword arguments handed
to a client constructor; :func:`describe` and every error message name the user and mechanism, never it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import TYPE_CHECKING, Any

from cpkmon.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

# ApiVersions v0, correlation id 0x5ec: the first request every Kafka client sends; the broker must answer it
# before SASL (Kafka and Tansu both allow it unauthenticated), so it proves the transport without credentials.
_PROBE_CORRELATION = 0x5EC
_PROBE_CLIENT = b"cpkmon-probe"
_ATTEMPT_TIMEOUT_S = 5.0  # one connection attempt (TCP + TLS + ApiVersions + SASL) on loopback or a LAN


class BrokerConnectionError(RuntimeError):
    """A Kafka broker cannot be used with these settings; the message names the broker and the cause."""

    def __init__(self, broker: str, cause: str, settings: Settings | None = None) -> None:
        how = f" over {describe(settings)}" if settings is not None else ""
        super().__init__(f"cannot connect to Kafka broker {broker}{how}: {cause}")
        self.broker = broker
        self.cause = cause


class _Fatal(Exception):
    """A failure retrying cannot fix (TLS verification, client certificate, SASL credentials)."""


def uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def describe(settings: Settings) -> str:
    """``SASL_SSL (SCRAM-SHA-512 as 'cpkmon', CA /etc/kafka/ca.pem)`` — for logs and errors: no secret."""
    protocol = settings.kafka_security_protocol
    parts: list[str] = []
    if uses_sasl(settings):
        parts.append(f"{settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username!r}")
    if uses_tls(settings):
        parts.append(f"CA {settings.kafka_ssl_cafile}" if settings.kafka_ssl_cafile else "system CAs")
        if settings.kafka_ssl_certfile:
            parts.append(f"client certificate {settings.kafka_ssl_certfile}")
    return f"{protocol} ({', '.join(parts)})" if parts else protocol


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The client TLS context (``None`` without TLS): verify the broker against the CA file (or the system
    CAs), present the client certificate if one is configured (mutual TLS)."""
    if not uses_tls(settings):
        return None
    from aiokafka.helpers import create_ssl_context

    def _path(p: object) -> str | None:
        return None if p is None else str(p)

    ctx: ssl.SSLContext = create_ssl_context(
        cafile=_path(settings.kafka_ssl_cafile),
        certfile=_path(settings.kafka_ssl_certfile),
        keyfile=_path(settings.kafka_ssl_keyfile),
    )
    ctx.check_hostname = settings.kafka_ssl_check_hostname
    return ctx


def _password(settings: Settings) -> str | None:
    secret = settings.kafka_sasl_password
    return None if secret is None else secret.get_secret_value()


def aiokafka_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and ``AIOKafkaAdminClient``."""
    kwargs: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if uses_tls(settings):
        kwargs["ssl_context"] = ssl_context(settings)
    if uses_sasl(settings):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = _password(settings)
    return kwargs


def kafka_python_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's ``KafkaProducer``/``KafkaConsumer``/``KafkaAdminClient`` (same
    names as aiokafka; kafka-python takes a ready ``ssl_context`` too, so both verify alike)."""
    return aiokafka_kwargs(settings)


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """``broker_credentials`` of the Faust app (None for PLAINTEXT)."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    import faust

    ctx = ssl_context(settings)
    if not uses_sasl(settings):
        return faust.SSLCredentials(ctx)
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=_password(settings),
        ssl_context=ctx,
        mechanism=settings.kafka_sasl_mechanism,
    )


# ------------------------------------------------------------------------------------------ pre-flight check
def _split(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return (host.strip("[]") or "localhost"), int(port or 9092)


def _tls_cause(exc: ssl.SSLError, settings: Settings) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        where = (
            f"CPKMON_KAFKA_SSL_CAFILE={settings.kafka_ssl_cafile}"
            if settings.kafka_ssl_cafile
            else "the system CAs (CPKMON_KAFKA_SSL_CAFILE is unset)"
        )
        return f"TLS: the broker's certificate is not trusted: {exc.verify_message} (checked against {where})"
    reason = exc.reason or str(exc)
    if "CERTIFICATE_REQUIRED" in reason.upper():
        return (
            "TLS: the broker requires a client certificate "
            "(set CPKMON_KAFKA_SSL_CERTFILE and CPKMON_KAFKA_SSL_KEYFILE)"
        )
    if "ALERT" in reason.upper():
        return f"TLS: the broker refused the handshake ({reason}); check the client certificate"
    if "WRONG_VERSION_NUMBER" in reason.upper() or "RECORD_LAYER" in reason.upper():
        return f"TLS handshake failed ({reason}): the port does not speak TLS"
    return f"TLS handshake failed: {reason}"


async def _probe_transport(
    host: str, port: int, settings: Settings, ctx: ssl.SSLContext | None, handshake_timeout: float
) -> None:
    """TCP (+ TLS) and one ApiVersions round trip, with our own socket: aiokafka turns a TLS alert that
    arrives after the handshake (TLS 1.3 sends "certificate required" then) into "connection closed"."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if ctx is not None:
            try:
                await asyncio.wait_for(writer.start_tls(ctx, server_hostname=host), handshake_timeout)
            except ssl.SSLError as exc:
                raise _Fatal(_tls_cause(exc, settings)) from exc
            except TimeoutError as exc:
                raise _Fatal(
                    f"no answer to the TLS handshake within {handshake_timeout:.1f} s: "
                    "the port does not seem to speak TLS"
                ) from exc
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                raise _Fatal(f"the broker closed the connection during the TLS handshake ({exc})") from exc
        body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + _PROBE_CORRELATION.to_bytes(4, "big")
        body += len(_PROBE_CLIENT).to_bytes(2, "big") + _PROBE_CLIENT
        try:
            writer.write(len(body).to_bytes(4, "big") + body)
            await writer.drain()
            head = await reader.readexactly(8)
        except ssl.SSLError as exc:
            raise _Fatal(_tls_cause(exc, settings)) from exc
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if ctx is not None:
                hint = (
                    f": it may not accept the client certificate {settings.kafka_ssl_certfile}"
                    if settings.kafka_ssl_certfile
                    else "; it may require a client certificate (set CPKMON_KAFKA_SSL_CERTFILE and "
                    "CPKMON_KAFKA_SSL_KEYFILE)"
                )
                raise _Fatal(f"the broker closed the connection after the TLS handshake{hint}") from exc
            raise _Fatal(
                "the broker closed the connection on the first request: does it expect TLS or SASL? "
                "(CPKMON_KAFKA_SECURITY_PROTOCOL is PLAINTEXT)"
            ) from exc
        if int.from_bytes(head[4:8], "big") != _PROBE_CORRELATION:
            raise _Fatal("the port answered, but not as a Kafka broker (wrong ApiVersions response)")
    finally:
        writer.close()
        with contextlib.suppress(Exception):  # after a failed TLS handshake the close never completes
            await asyncio.wait_for(writer.wait_closed(), 0.5)


async def _probe(host: str, port: int, settings: Settings, timeout: float) -> list[tuple[str, int]]:
    """Check one broker with the full settings; returns the brokers its metadata advertises."""
    from aiokafka import errors
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    kwargs = aiokafka_kwargs(settings)
    async with asyncio.timeout(timeout):
        await _probe_transport(host, port, settings, kwargs.get("ssl_context"), timeout * 0.8)
        try:
            conn = await create_conn(
                host, port, client_id="cpkmon-probe", request_timeout_ms=int(timeout * 1000), **kwargs
            )
        except errors.SaslAuthenticationFailed as exc:
            raise _Fatal(
                f"SASL {settings.kafka_sasl_mechanism} authentication failed for user "
                f"{settings.kafka_sasl_username!r}: the broker says {_kafka_message(exc)} "
                "(check CPKMON_KAFKA_SASL_USERNAME/PASSWORD/MECHANISM)"
            ) from exc
        except errors.UnsupportedSaslMechanismError as exc:
            raise _Fatal(f"SASL: {_kafka_message(exc)} (CPKMON_KAFKA_SASL_MECHANISM)") from exc
        except (errors.IllegalSaslStateError, errors.AuthenticationFailedError) as exc:
            raise _Fatal(f"SASL: {type(exc).__name__}: {_kafka_message(exc)}") from exc
        except ssl.SSLError as exc:
            raise _Fatal(_tls_cause(exc, settings)) from exc
        except errors.KafkaConnectionError as exc:
            if uses_sasl(settings):
                raise _Fatal(
                    f"the broker closed the connection during the SASL {settings.kafka_sasl_mechanism} login "
                    f"as {settings.kafka_sasl_username!r}: it may not offer {settings.kafka_sasl_mechanism} "
                    "(CPKMON_KAFKA_SASL_MECHANISM)"
                ) from exc
            raise
        except (KeyError, ValueError) as exc:
            # aiokafka's SCRAM client parses the server's final message for "v=" (its signature); a broker
            # that rejects the proof or the user answers "e=..." instead, which surfaces as KeyError('v').
            raise _Fatal(
                f"SASL {settings.kafka_sasl_mechanism} authentication failed for user "
                f"{settings.kafka_sasl_username!r}: the broker rejected the login (unknown user or wrong "
                "password; check CPKMON_KAFKA_SASL_USERNAME/PASSWORD)"
            ) from exc
        try:
            metadata = await conn.send(MetadataRequest([]))
        except errors.KafkaConnectionError as exc:
            hint = (
                "; it may require SASL (CPKMON_KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT)"
                if not uses_sasl(settings)
                else ""
            )
            raise _Fatal(f"the broker answered ApiVersions but dropped the metadata request{hint}") from exc
        finally:
            conn.close()
    return [(str(b[1]), int(b[2])) for b in metadata.brokers]


def _kafka_message(exc: BaseException) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith(type(exc).__name__ + ": ") else text


async def check_broker(settings: Settings, timeout: float | None = None) -> None:
    """Connect to a bootstrap broker and to every broker it advertises, as the real clients will.

    Returns when one bootstrap broker and all advertised brokers accept the settings. Raises
    :class:`BrokerConnectionError` at once on a TLS or SASL failure, and after ``timeout`` (default
    ``CPKMON_KAFKA_CONNECT_TIMEOUT_S``) when no broker could be reached at all.
    """
    budget = settings.kafka_connect_timeout_s if timeout is None else timeout
    deadline = time.monotonic() + budget
    servers = [_split(s) for s in settings.bootstrap_servers()]
    last: BrokerConnectionError | None = None
    delay = 0.1
    while True:
        for host, port in servers:
            attempt = max(0.5, min(_ATTEMPT_TIMEOUT_S, deadline - time.monotonic()))
            name = f"{host}:{port}"
            try:
                advertised = await _probe(host, port, settings, attempt)
            except _Fatal as exc:
                raise BrokerConnectionError(name, str(exc), settings) from exc
            except Exception as exc:  # unreachable, refused, slow: worth a retry
                last = BrokerConnectionError(name, _transient_cause(exc, attempt), settings)
                continue
            for a_host, a_port in advertised:
                if (a_host, a_port) == (host, port):
                    continue
                a_name = f"{a_host}:{a_port}"
                try:
                    await _probe(a_host, a_port, settings, attempt)
                except _Fatal as exc:
                    raise BrokerConnectionError(a_name, f"{exc} (advertised by {name})", settings) from exc
                except Exception as exc:
                    raise BrokerConnectionError(
                        a_name,
                        f"{_transient_cause(exc, attempt)} — {name} advertises this address in its metadata "
                        "(advertised.listeners), and every client will be sent there",
                        settings,
                    ) from exc
            return
        if time.monotonic() + delay >= deadline:
            assert last is not None
            raise BrokerConnectionError(last.broker, f"{last.cause} (gave up after {budget:g} s)", settings)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


def _transient_cause(exc: BaseException, attempt: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {attempt:.1f} s"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not text.startswith(type(exc).__name__) else text


def check_broker_sync(settings: Settings, timeout: float | None = None) -> None:
    """:func:`check_broker` for synchronous commands (``simulate``, ``replay``, ``up``)."""
    asyncio.run(check_broker(settings, timeout))


def require_broker(settings: Settings, timeout: float | None = None) -> None:
    """For the command line: check the broker, or exit with status 1 and the one-line reason on stderr."""
    try:
        check_broker_sync(settings, timeout)
    except BrokerConnectionError as exc:
        raise SystemExit(f"error: {exc}") from None

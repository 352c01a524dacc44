"""S3 and transport failures turned into the store errors a job can act on.

S3 names its errors with codes (`SlowDown`, `NoSuchBucket`, …), but a HEAD
answer has no body, so there only the status is known (`404`, `403`): both are
handled. Messages are built from the code and S3's own message text, never from
the request (an S3 error body for `SignatureDoesNotMatch` carries the string
that was signed, and the secret must not even be hinted at).

Digest errors (`BadDigest`, `XAmzContentSHA256Mismatch`) mean the bytes that
arrived are not the bytes whose checksum was sent. The put path tells a local
change (the file differs from its recorded hashes: permanent) from damage in
transit (transient) before it gets here; the default below is transient.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    SSLError,
)
from urllib3.exceptions import HTTPError as Urllib3Error

from core.remote.base import ObjectNotFound, PermanentError, RemoteError, TransientError


class ArchivedError(PermanentError):
    """The object sits in an archive class (Glacier, Deep Archive) and was not restored."""


TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "TooManyRequests",
        "RequestLimitExceeded",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",  # a conflicting operation on the bucket is in progress
        "GlacierExpeditedRetrievalNotAvailable",
    }
)
DIGEST_CODES = frozenset({"BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"})
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidSecurity",
    }
)
DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled"})
REGION_CODES = frozenset(
    {
        "PermanentRedirect",
        "301",
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraintException",
    }
)

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    HTTPClientError,  # ConnectionClosedError, ReadTimeoutError, ResponseStreamingError
    ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError
    IncompleteReadError,
    Urllib3Error,  # a body read that broke off (ProtocolError) below botocore
)

CREDENTIALS_HINT = (
    "check the access key and secret key of this target (they are kept in the system "
    "keyring) and that they are still active"
)


def retry_after(headers: dict[str, Any]) -> float | None:
    """Seconds from a `Retry-After` header: a number, or an HTTP date."""
    text = str(headers.get("retry-after") or "").strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_code(err: ClientError) -> str:
    code = err.response.get("Error", {}).get("Code")
    if code:
        return str(code)
    return str(status_of(err))


def status_of(err: ClientError) -> int:
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return int(status or 0)


def headers_of(err: ClientError) -> dict[str, Any]:
    headers = err.response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}
    return dict(headers)


def server_says(err: ClientError) -> str:
    """S3's own message (a sentence), or the code when there is none."""
    message = err.response.get("Error", {}).get("Message")
    return str(message).strip() if message else error_code(err)


def map_error(err: BaseException, *, what: str, store: str, bucket: str) -> RemoteError | None:
    """The store error for `err`, or None when it is not an S3 or network failure.

    `what` names the operation for the message ("upload p1/a.tar.zst").
    """
    if isinstance(err, RemoteError):
        return err
    if isinstance(err, ClientError):
        return _map_client_error(err, what=what, store=store, bucket=bucket)
    if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
        return PermanentError(
            f"no usable AWS credentials were found for S3 ({store})",
            hint="add an access key to this target, or set up the AWS credential chain "
            "(environment, ~/.aws/credentials, SSO)",
        )
    if isinstance(err, CredentialRetrievalError):
        return TransientError(f"could not fetch AWS credentials for S3 ({store}); will retry")
    if isinstance(err, NoRegionError):
        return PermanentError(
            f"S3 ({store}) has no region configured",
            hint="set the target's region (e.g. --region eu-central-1)",
        )
    if isinstance(err, SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(err):
        return PermanentError(
            f"the TLS certificate of the S3 endpoint ({store}) could not be verified",
            hint="check the endpoint URL; a private endpoint needs its CA in the system store",
        )
    if isinstance(err, TRANSPORT_ERRORS):
        detail = getattr(err, "strerror", None) or type(err).__name__
        return TransientError(f"network error while trying to {what} on S3 ({store}): {detail}")
    if isinstance(err, ParamValidationError):
        return PermanentError(f"S3 ({store}) request to {what} was malformed: {err}")
    if isinstance(err, BotoCoreError):
        return PermanentError(f"S3 ({store}) could not {what}: {type(err).__name__}")
    return None


def _map_client_error(err: ClientError, *, what: str, store: str, bucket: str) -> RemoteError:
    code, status = error_code(err), status_of(err)
    label = f"{code}" if code == str(status) else f"{status} {code}"
    headers = headers_of(err)
    if code in TRANSIENT_CODES or status == 429 or status >= 500:
        return TransientError(
            f"S3 ({store}) could not {what} just now: {server_says(err)} ({label})",
            retry_after=retry_after(headers),
        )
    if code in NOT_FOUND_CODES:
        return ObjectNotFound(f"not found on S3 ({store}) while trying to {what}")
    if code == "NoSuchBucket":
        return PermanentError(
            f"the bucket {bucket!r} does not exist on S3 ({store})",
            hint="check the bucket name (and endpoint), or create the bucket first",
        )
    if code in CREDENTIAL_CODES:
        return PermanentError(
            f"S3 ({store}) did not accept the credentials while trying to {what} ({label})",
            hint=CREDENTIALS_HINT,
        )
    if code in DENIED_CODES:
        return PermanentError(
            f"S3 ({store}) denied access to bucket {bucket!r} while trying to {what} ({label})",
            hint="check the credentials and that their policy allows this bucket "
            "(s3:GetObject, s3:PutObject, s3:ListBucket, s3:DeleteObject, s3:RestoreObject)",
        )
    if code in REGION_CODES:
        region = headers.get("x-amz-bucket-region")
        return PermanentError(
            f"the bucket {bucket!r} is in another region than S3 ({store}) is set to",
            hint=f"set the target's region to {region}" if region else "fix the target's region",
        )
    if code == "InvalidObjectState":
        return ArchivedError(
            f"the object is in an archive storage class on S3 ({store}) and cannot be read "
            f"(while trying to {what})",
            hint="request a restore first and wait until it completes (hours for Deep Archive)",
        )
    if code in DIGEST_CODES:
        return TransientError(
            f"S3 ({store}) received data that did not match its checksum while trying to "
            f"{what}: it was damaged in transit"
        )
    if code == "RequestTimeTooSkewed":
        return PermanentError(
            f"S3 ({store}) rejected the request because this computer's clock is wrong",
            hint="set the system clock (enable time synchronisation) and try again",
        )
    if code in {"EntityTooLarge", "EntityTooSmall"}:
        return PermanentError(f"S3 ({store}) refused the size of the upload: {server_says(err)}")
    if code.startswith("KMS.") or code == "KMSKeyNotAccessible":
        return PermanentError(
            f"S3 ({store}) could not use the KMS key while trying to {what}: {server_says(err)}",
            hint="check the KMS key id and that the credentials may use it",
        )
    return PermanentError(f"S3 ({store}) refused to {what}: {server_says(err)} ({label})")

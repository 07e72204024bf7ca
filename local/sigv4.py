"""Dev-only SigV4 verification that mimics API Gateway's AWS_IAM authorization.

The signature is recomputed with botocore's own signer, which builds the canonical
request the way API Gateway (execute-api) does:

* The canonical URI is the path as sent on the wire, URI-encoded once more (AWS's
  "double encoding" for every service but S3): ``/items/arn%3Aaws`` is signed as
  ``/items/arn%253Aaws`` and ``/items/arn:aws`` as ``/items/arn%3Aaws``. A path
  signed as sent (curl before 8.14 ``--aws-sigv4``) does not match, as on AWS.
* The canonical query string is sorted. botocore sorts the raw ``key=value`` pairs;
  requests-aws4auth decodes, re-encodes (RFC 3986, ``+`` becomes ``%20``) and sorts
  them. Both renderings of the wire query are accepted; an unsorted one (curl before
  8.3) is not, as on AWS.
* The date comes from ``X-Amz-Date`` (ISO 8601 basic) or, without it, from ``Date``
  (an HTTP date such as ``Mon, 09 Sep 2011 23:36:00 GMT``, as in AWS's SigV4 test
  suite); the header it comes from must be signed.

Both query renderings come from the same wire query, so accepting either never lets a
tampered path, query, header or body through.
"""
from __future__ import annotations

import email.utils
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Optional, Tuple
from urllib.parse import parse_qsl

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"
# API Gateway (like every SigV4 service) tolerates 5 minutes of clock skew.
MAX_CLOCK_SKEW = timedelta(minutes=5)
LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_USER_NAME = "local-developer"
# Shaped like a real IAM user id (AIDA prefix, 21 characters).
LOCAL_USER_ID = "AIDALOCALDEVELOPER000"

MISSING_TOKEN = "Missing Authentication Token"
UNKNOWN_KEY = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you "
    "provided. Check your AWS Secret Access Key and signing method. Consult "
    "the service documentation for details."
)


class SignatureError(Exception):
    """A request failed SigV4 verification; API Gateway answers it with a 403."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


@dataclass(frozen=True)
class CallerIdentity:
    """The IAM principal API Gateway would report for a verified request."""

    access_key: str
    user_arn: str
    account_id: str
    caller: str
    user: str

    def as_request_context(self) -> dict:
        """Return the fields API Gateway puts in ``requestContext.identity``."""
        return {
            "accessKey": self.access_key,
            "userArn": self.user_arn,
            "accountId": self.account_id,
            "caller": self.caller,
            "user": self.user,
        }


@dataclass(frozen=True)
class _Authorization:
    access_key: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: Tuple[str, ...]
    signature: str


class _ReceivedRequestSigner(SigV4Auth):
    """botocore's SigV4 signer aimed at a received request instead of an outgoing one."""

    def __init__(self, credentials: Credentials, service: str, region: str,
                 signed_headers: Tuple[str, ...], raw_path: str, canonical_query: str) -> None:
        super().__init__(credentials, service, region)
        self._signed_header_names = signed_headers
        self._raw_path = raw_path
        self._canonical_query = canonical_query

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        # Sign exactly what the client listed in SignedHeaders, not botocore's
        # own choice of headers.
        selected = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed_header_names:
                selected[name.lower()] = value
        return selected

    def canonical_query_string(self, request: AWSRequest) -> str:
        return self._canonical_query

    def _normalize_url_path(self, path: str) -> str:
        # botocore's encoding of the path exactly as received: a URL rebuilt from it
        # could read a raw '#' or '?' as the end of the path.
        return super()._normalize_url_path(self._raw_path or "/")


class SigV4Verifier:
    """Verify API Gateway AWS_IAM (SigV4) signatures for one access key pair."""

    def __init__(self, access_key: str, secret_key: str, region: str = "us-east-1",
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 service: str = SERVICE, identities: Optional[dict] = None) -> None:
        self._credentials = Credentials(access_key, secret_key)
        self._region = region
        self._clock = clock
        # Only AWS's published SigV4 test vectors (service "host") need another service.
        self._service = service
        # More access keys, each standing for another IAM principal: {access key: (secret, ARN)}.
        self._identities = {key: (Credentials(key, secret), arn) for key, (secret, arn) in (identities or {}).items()}

    def verify(self, method: str, raw_target: str,
               headers: Iterable[Tuple[str, str]], body: Optional[bytes]) -> CallerIdentity:
        """Check a request as received on the wire and return its caller identity."""
        header_pairs = HTTPHeaders()
        for name, value in headers:
            header_pairs[name] = value
        lowered = {name.lower(): value for name, value in header_pairs.items()}
        raw_path, _, raw_query = raw_target.partition("?")
        authorization = lowered.get("authorization")
        if authorization is None:
            if any(k.lower() == "x-amz-signature" for k, _ in parse_qsl(raw_query)):
                raise SignatureError(
                    "Query-string (presigned URL) SigV4 authentication is not "
                    "supported by the local server; sign the Authorization header.",
                    "IncompleteSignatureException")
            raise SignatureError(MISSING_TOKEN, "MissingAuthenticationTokenException")
        auth = _parse_authorization(authorization)
        date_header, amz_date = self._check_date(lowered, auth)
        self._check_scope(auth)
        credentials, principal_arn = self._identities.get(auth.access_key, (self._credentials, None))
        if auth.access_key != credentials.access_key:
            raise SignatureError(UNKNOWN_KEY, "UnrecognizedClientException")
        if "host" not in auth.signed_headers:
            raise SignatureError(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
                "InvalidSignatureException")
        if date_header not in auth.signed_headers:
            # The date is part of the string to sign anyway; AWS still insists that
            # the header it came from is signed, like Host.
            raise SignatureError(
                f"'{_DATE_HEADER_NAMES[date_header]}' must be a 'SignedHeader' in the AWS Authorization.",
                "InvalidSignatureException")
        if any(name not in lowered for name in auth.signed_headers):
            raise SignatureError(SIGNATURE_MISMATCH, "InvalidSignatureException")
        self._check_declared_payload_hash(header_pairs, body or b"")
        if "#" in raw_target:
            # No client sends a fragment; the app would drop from '#' on what the
            # signature (re-encoded query rendering) still covers.
            raise SignatureError(SIGNATURE_MISMATCH, "InvalidSignatureException")
        expected = self._candidate_signatures(
            method, raw_path, raw_query, header_pairs, body or b"", auth, amz_date, credentials)
        if not any(hmac.compare_digest(sig, auth.signature) for sig in expected):
            raise SignatureError(SIGNATURE_MISMATCH, "InvalidSignatureException")
        if principal_arn is not None:
            return principal_identity(auth.access_key, principal_arn)
        return CallerIdentity(
            access_key=auth.access_key,
            user_arn=f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/{LOCAL_USER_NAME}",
            account_id=LOCAL_ACCOUNT_ID,
            caller=LOCAL_USER_ID,
            user=LOCAL_USER_ID,
        )

    def _check_declared_payload_hash(self, header_pairs: HTTPHeaders, body: bytes) -> None:
        # botocore's signer trusts a declared X-Amz-Content-SHA256; API Gateway checks
        # it against the body, so a body swapped after signing must fail here.
        declared = header_pairs.get("X-Amz-Content-SHA256")
        if declared is None:
            return
        request = AWSRequest(method="POST", url="http://local/", data=body)
        if declared != SigV4Auth(self._credentials, self._service, self._region).payload(request):
            raise SignatureError(SIGNATURE_MISMATCH, "InvalidSignatureException")

    def _check_date(self, lowered: dict, auth: _Authorization) -> Tuple[str, str]:
        """Return the header the date came from and the date as an ISO 8601 basic timestamp."""
        if "x-amz-date" in lowered:
            date_header, amz_date = "x-amz-date", lowered["x-amz-date"]
        elif "date" in lowered:
            date_header, amz_date = "date", _http_date_as_timestamp(lowered["date"])
        else:
            raise SignatureError(
                "Authorization header requires existence of either a 'X-Amz-Date' "
                "or a 'Date' header.", "IncompleteSignatureException")
        try:
            signed_at = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=timezone.utc)
        except ValueError:
            raise SignatureError(
                f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                "See http://en.wikipedia.org/wiki/ISO_8601",
                "IncompleteSignatureException") from None
        now = self._clock()
        stamp = now.strftime(SIGV4_TIMESTAMP)
        if signed_at < now - MAX_CLOCK_SKEW:
            limit = (now - MAX_CLOCK_SKEW).strftime(SIGV4_TIMESTAMP)
            raise SignatureError(
                f"Signature expired: {amz_date} is now earlier than {limit} ({stamp} - 5 min.)",
                "InvalidSignatureException")
        if signed_at > now + MAX_CLOCK_SKEW:
            limit = (now + MAX_CLOCK_SKEW).strftime(SIGV4_TIMESTAMP)
            raise SignatureError(
                f"Signature not yet current: {amz_date} is still later than {limit} "
                f"({stamp} + 5 min.)", "InvalidSignatureException")
        if auth.date != amz_date[:8]:
            raise SignatureError(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                f"of date from HTTP: '{auth.date}' != '{amz_date[:8]}', from '{amz_date}'.",
                "InvalidSignatureException")
        return date_header, amz_date

    def _check_scope(self, auth: _Authorization) -> None:
        if auth.region != self._region:
            raise SignatureError(
                f"Credential should be scoped to a valid region, not '{auth.region}'. ",
                "InvalidSignatureException")
        if auth.service != self._service:
            raise SignatureError(
                f"Credential should be scoped to correct service: '{self._service}'. ",
                "InvalidSignatureException")
        if auth.terminator != "aws4_request":
            raise SignatureError(
                "Credential should be scoped with a valid terminator: 'aws4_request', "
                f"not '{auth.terminator}'. ", "InvalidSignatureException")

    def _candidate_signatures(self, method: str, raw_path: str, raw_query: str,
                              header_pairs: HTTPHeaders, body: bytes, auth: _Authorization,
                              amz_date: str, credentials: Optional[Credentials] = None) -> list:
        signatures = []
        request = AWSRequest(method=method, url="http://local/", headers=header_pairs, data=body)
        request.context["timestamp"] = amz_date
        for canonical_query in _canonical_queries(raw_query):
            signer = _ReceivedRequestSigner(
                credentials or self._credentials, self._service, self._region, auth.signed_headers,
                raw_path, canonical_query)
            canonical_request = signer.canonical_request(request)
            string_to_sign = signer.string_to_sign(request, canonical_request)
            signatures.append(signer.signature(string_to_sign, request))
        return signatures


def principal_identity(access_key: str, arn: str) -> CallerIdentity:
    """What API Gateway reports for an IAM user ARN or an assumed-role session ARN."""
    account = arn.split(":")[4]
    resource = arn.split(":", 5)[5]
    # Unique ids are shaped like AWS's: AIDA... for users, AROA...:<session> for role sessions.
    unique = "AROA" if resource.startswith("assumed-role/") else "AIDA"
    name = resource.split("/")[1] if "/" in resource else resource
    caller = (unique + name.upper().replace("-", ""))[:21].ljust(21, "0")
    if unique == "AROA":
        caller += ":" + resource.rsplit("/", 1)[1]
    return CallerIdentity(access_key=access_key, user_arn=arn, account_id=account, caller=caller, user=caller)


def _parse_authorization(value: str) -> _Authorization:
    algorithm, _, params_text = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(
            f"Unsupported authorization algorithm '{algorithm}'; expected '{ALGORITHM}'.",
            "IncompleteSignatureException")
    params = {}
    for part in params_text.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            raise SignatureError(
                f"'{part.strip()}' not a valid key=value pair (missing equal-sign) in "
                f"Authorization header: '{value}'.", "IncompleteSignatureException")
        params[key] = val
    missing = [name for name in ("Credential", "Signature", "SignedHeaders") if name not in params]
    if missing:
        raise SignatureError(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
            + f" Authorization={value}", "IncompleteSignatureException")
    scope = params["Credential"].split("/")
    if len(scope) != 5:
        raise SignatureError(
            "Credential should be scoped to a valid region, service and terminator: "
            f"'{params['Credential']}' is not "
            "<AccessKey>/<YYYYMMDD>/<region>/<service>/aws4_request.",
            "IncompleteSignatureException")
    return _Authorization(
        access_key=scope[0], date=scope[1], region=scope[2], service=scope[3],
        terminator=scope[4],
        signed_headers=tuple(h.strip().lower() for h in params["SignedHeaders"].split(";")),
        signature=params["Signature"],
    )


def _canonical_queries(raw_query: str) -> list:
    # Both sorted, both computed by botocore: the raw pairs as sent (botocore's own
    # clients), and the decoded pairs re-encoded (requests-aws4auth). See the module docstring.
    signer = SigV4Auth(None, SERVICE, "")
    as_sent = signer.canonical_query_string(AWSRequest(method="GET", url=f"http://local/?{raw_query}"))
    re_encoded = signer.canonical_query_string(AWSRequest(
        method="GET", url="http://local/", params=parse_qsl(raw_query, keep_blank_values=True)))
    return list(dict.fromkeys([as_sent, re_encoded]))


def _http_date_as_timestamp(value: str) -> str:
    # An HTTP date ("Mon, 09 Sep 2011 23:36:00 GMT", or botocore's "... -0000"); the
    # string to sign always carries the ISO 8601 basic form. An unreadable value is
    # reported as it was sent.
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return value
    # parsedate_to_datetime returns "-0000" (UTC, RFC 5322) as a naive datetime.
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).strftime(SIGV4_TIMESTAMP)


_DATE_HEADER_NAMES = {"x-amz-date": "X-Amz-Date", "date": "Date"}


"""Local SigV4 server: real HTTP requests signed by botocore, requests-aws4auth and curl."""
import datetime
import http.client
import json
import os
import re
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlsplit

import botocore.auth
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from chalice import Chalice, IAMAuthorizer
from chalice.config import Config
from requests_aws4auth import AWS4Auth

from local.server import make_server
from local.sigv4 import SignatureError, SigV4Verifier

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
ARN = "arn:aws:states:us-east-1:123456789012:execution:hello:x1"
ENCODED_ARN = ARN.replace(":", "%3A")
GREETING_VAR = "SFN_GATEWAY_TEST_GREETING"
MISSING_TOKEN = {"message": "Missing Authentication Token"}
MISMATCH = {"message": (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service "
    "documentation for details.")}



def _curl_version():
    version_line = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(part) for part in re.match(r"curl (\d+)\.(\d+)\.(\d+)", version_line).groups())


# curl sorts the signed query since 8.3.0 and URI-encodes the signed path since 8.14.0 (curl
# pull requests #11806 and #17129); older versions sign both as sent, which API Gateway refuses.
CURL_SORTS_QUERY = _curl_version() >= (8, 3, 0)
CURL_ENCODES_PATH = _curl_version() >= (8, 14, 0)

app = Chalice(app_name="sigv4-test")
iam = IAMAuthorizer()


@app.route("/health")
def health():
    return {"status": "ok", "greeting": os.environ.get(GREETING_VAR)}


@app.route("/whoami", authorizer=iam)
def whoami():
    request = app.current_request
    return {"identity": request.context["identity"], "query": request.query_params}


@app.route("/echo", methods=["POST"], authorizer=iam)
def echo():
    return {"body": app.current_request.raw_body.decode()}


@app.route("/items/{arn}", authorizer=iam)
def item(arn):
    return {"arn": arn}


@pytest.fixture(scope="module")
def base_url():
    # Built like `chalice local` does (config_from_disk as its own argument): passing
    # it through Config.create(**kwargs) would silently drop the stage's variables.
    config = Config(
        chalice_stage="local",
        user_provided_params={"chalice_app": app, "app_name": "sigv4-test"},
        config_from_disk={"stages": {"local": {"environment_variables": {GREETING_VAR: "hi"}}}},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(GREETING_VAR, "overwritten by make_server")
        server = make_server(app, config, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield "http://127.0.0.1:%d" % server.server_address[1]
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def botocore_request(method, url, body=None, *, secret=SECRET_KEY, access_key=ACCESS_KEY,
                     region=REGION, service="execute-api", headers=None, send_body=None,
                     send_url=None, session=requests, signer=SigV4Auth):
    """Sign with botocore's SigV4Auth (or a variant), then send with requests (optionally tampered)."""
    signed = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    signer(Credentials(access_key, secret), service, region).add_auth(signed)
    return session.request(method, send_url or url, headers=dict(signed.headers),
                           data=body if send_body is None else send_body, timeout=10)


def aws4auth():
    return AWS4Auth(ACCESS_KEY, SECRET_KEY, REGION, "execute-api")


def aws4auth_request(method, url, body=None, headers=None):
    return requests.request(method, url, data=body, headers=headers, auth=aws4auth(), timeout=10)


def curl_request(method, url, body=None):
    """Sign with curl --aws-sigv4 and return (status, parsed JSON body)."""
    args = ["curl", "-sS", "-X", method, "-w", "\n%{http_code}",
            "--aws-sigv4", "aws:amz:%s:execute-api" % REGION,
            "--user", "%s:%s" % (ACCESS_KEY, SECRET_KEY)]
    if body is not None:
        args += ["-H", "content-type: application/json", "--data-binary", body]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=10, check=True)
    text, _, status = out.stdout.rpartition("\n")
    return int(status), json.loads(text)


def send(client, method, url, body=None):
    if client == "curl":
        return curl_request(method, url, body)
    headers = {"content-type": "application/json"} if body is not None else None
    response = {"botocore": botocore_request, "aws4auth": aws4auth_request}[client](
        method, url, body, headers=headers)
    return response.status_code, response.json()


CLIENTS = ["botocore", "aws4auth", "curl"]


@pytest.mark.parametrize("client", CLIENTS)
def test_signed_get_returns_200_and_handler_sees_the_verified_identity(base_url, client):
    status, body = send(client, "GET", base_url + "/whoami")

    assert status == 200
    identity = body["identity"]
    assert identity["accessKey"] == ACCESS_KEY
    assert identity["userArn"] == "arn:aws:iam::123456789012:user/local-developer"
    assert identity["accountId"] == "123456789012"
    assert identity["caller"] == identity["user"] != ""
    assert identity["sourceIp"] == "127.0.0.1"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("query, expected", [
    ("limit=5&status=RUNNING", {"limit": "5", "status": "RUNNING"}),
    ("name=a%20b&sort=-startDate&z=%2F", {"name": "a b", "sort": "-startDate", "z": "/"}),
])
def test_signed_get_with_query_string_returns_200(base_url, client, query, expected):
    status, body = send(client, "GET", base_url + "/whoami?" + query)

    assert status == 200
    assert body["query"] == expected


@pytest.mark.parametrize("client", ["botocore", "aws4auth"])
def test_signed_get_with_unsorted_query_string_returns_200_from_clients_that_sort_it(base_url, client):
    status, body = send(client, "GET", base_url + "/whoami?status=RUNNING&limit=5&status=FAILED")

    assert status == 200
    assert body["query"] == {"limit": "5", "status": "FAILED"}


@pytest.mark.parametrize("client", ["botocore", "aws4auth"])
@pytest.mark.parametrize("segment", [ENCODED_ARN, ARN], ids=["encoded-arn", "raw-arn"])
def test_signed_get_with_arn_path_segment_returns_200(base_url, client, segment):
    status, body = send(client, "GET", base_url + "/items/" + segment)

    assert status == 200
    # chalice local hands the segment over as sent, without decoding it.
    assert unquote(body["arn"]) == ARN


def test_curl_signed_unsorted_query_is_accepted_only_from_a_curl_that_sorts_it(base_url):
    status, body = curl_request("GET", base_url + "/whoami?status=RUNNING&limit=5")

    if CURL_SORTS_QUERY:
        assert (status, body["query"]) == (200, {"limit": "5", "status": "RUNNING"})
    else:
        assert (status, body) == (403, MISMATCH)


@pytest.mark.parametrize("segment", [ENCODED_ARN, ARN], ids=["encoded-arn", "raw-arn"])
def test_curl_signed_arn_path_is_accepted_only_from_a_curl_that_encodes_it(base_url, segment):
    status, body = curl_request("GET", base_url + "/items/" + segment)

    if CURL_ENCODES_PATH:
        assert (status, unquote(body["arn"])) == (200, ARN)
    else:
        assert (status, body) == (403, MISMATCH)


@pytest.mark.parametrize("client", CLIENTS)
def test_signed_post_returns_200_and_echoes_the_body(base_url, client):
    status, body = send(client, "POST", base_url + "/echo", '{"input": {"n": 1}}')

    assert status == 200
    assert body == {"body": '{"input": {"n": 1}}'}


def test_health_without_signature_returns_200_with_stage_environment(base_url):
    response = requests.get(base_url + "/health", timeout=10)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "greeting": "hi"}


def test_unsigned_request_to_iam_route_returns_403_missing_authentication_token(base_url):
    response = requests.get(base_url + "/whoami", timeout=10)

    assert response.status_code == 403
    assert response.json() == MISSING_TOKEN
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_unsigned_request_to_unknown_path_returns_403_missing_authentication_token(base_url):
    response = requests.get(base_url + "/no/such/route", timeout=10)

    assert response.status_code == 403
    assert response.json() == MISSING_TOKEN


def test_wrong_secret_returns_403_signature_mismatch(base_url):
    response = botocore_request("GET", base_url + "/whoami", secret="not-the-secret")

    assert response.status_code == 403
    assert response.json() == MISMATCH
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_unknown_access_key_returns_403_invalid_security_token(base_url):
    response = botocore_request("GET", base_url + "/whoami", access_key="AKIDUNKNOWN")

    assert response.status_code == 403
    assert response.json() == {"message": "The security token included in the request is invalid."}
    assert response.headers["x-amzn-ErrorType"] == "UnrecognizedClientException"


def test_body_different_from_the_signed_one_returns_403(base_url):
    response = botocore_request("POST", base_url + "/echo", b'{"n": 1}', send_body=b'{"n": 2}')

    assert response.status_code == 403
    assert response.json() == MISMATCH


def test_body_different_from_declared_content_sha256_returns_403(base_url):
    # requests-aws4auth sends X-Amz-Content-Sha256, which botocore's signer would trust.
    prepared = requests.Request("POST", base_url + "/echo", data=b'{"n": 1}',
                                auth=aws4auth()).prepare()
    prepared.body = b'{"n": 2}'

    response = requests.Session().send(prepared, timeout=10)

    assert response.status_code == 403
    assert response.json() == MISMATCH


@pytest.mark.parametrize("signed_path, sent_path", [
    ("/whoami?limit=5", "/whoami?limit=6"),
    ("/items/" + ENCODED_ARN, "/items/" + ENCODED_ARN.replace("x1", "x2")),
])
def test_path_or_query_different_from_the_signed_one_returns_403(base_url, signed_path, sent_path):
    response = botocore_request("GET", base_url + signed_path, send_url=base_url + sent_path)

    assert response.status_code == 403
    assert response.json() == MISMATCH


def test_signed_header_changed_after_signing_returns_403(base_url):
    signed = AWSRequest(method="GET", url=base_url + "/whoami", headers={"x-trace": "a"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION).add_auth(signed)
    headers = dict(signed.headers, **{"x-trace": "b"})

    response = requests.get(base_url + "/whoami", headers=headers, timeout=10)

    assert response.status_code == 403
    assert response.json() == MISMATCH


@pytest.mark.parametrize("skew, phrase", [
    (-10, "is now earlier than"), (10, "is still later than")], ids=["stale", "future"])
def test_date_more_than_5_minutes_off_returns_403_signature_expired(
        base_url, monkeypatch, skew, phrase):
    signed_at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=skew)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at)

    response = botocore_request("GET", base_url + "/whoami")

    assert response.status_code == 403
    message = response.json()["message"]
    assert message.startswith("Signature expired: " if skew < 0 else "Signature not yet current: ")
    assert phrase in message and message.endswith(" 5 min.)")
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


@pytest.mark.parametrize("region, service, expected", [
    ("eu-west-1", "execute-api",
     "Credential should be scoped to a valid region, not 'eu-west-1'. "),
    (REGION, "states", "Credential should be scoped to correct service: 'execute-api'. "),
])
def test_wrong_credential_scope_returns_403(base_url, region, service, expected):
    response = botocore_request("GET", base_url + "/whoami", region=region, service=service)

    assert response.status_code == 403
    assert response.json() == {"message": expected}


def test_malformed_authorization_header_returns_403(base_url):
    response = requests.get(base_url + "/whoami", headers={
        "Authorization": ("AWS4-HMAC-SHA256 "
                          "Credential=testing/20240101/us-east-1/execute-api/aws4_request"),
        "X-Amz-Date": "20240101T000000Z"}, timeout=10)

    assert response.status_code == 403
    assert response.json()["message"].startswith(
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter.")
    assert response.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"


def test_32_concurrent_keep_alive_clients_all_succeed(base_url):
    start = threading.Barrier(32)

    def client(n):
        with requests.Session() as session:
            start.wait(timeout=10)
            return [botocore_request("GET", "%s/items/c%d-r%d" % (base_url, n, i), session=session)
                    for i in range(5)]

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(client, range(32), timeout=60))

    for n, responses in enumerate(results):
        # Distinct values per client also prove current_request is not shared across threads.
        assert [(r.status_code, r.json()) for r in responses] == [
            (200, {"arn": "c%d-r%d" % (n, i)}) for i in range(5)]


def test_keep_alive_signed_get_latency_is_reported(base_url, capsys):
    timings = []
    with requests.Session() as session:
        for _ in range(200):
            began = time.perf_counter()
            response = botocore_request("GET", base_url + "/whoami", session=session)
            timings.append(time.perf_counter() - began)
            assert response.status_code == 200

    assert response.json()["identity"]["accessKey"] == ACCESS_KEY
    with capsys.disabled():
        print("\nmedian keep-alive signed GET (sign + round trip): %.2f ms"
              % (statistics.median(timings) * 1000))


# --- what API Gateway refuses and accepts (issue 9, item 18) -----------------------------------


class _SignsQueryAsSent(SigV4Auth):
    """A client that signs the query string as sent, unsorted (as curl before 8.3 does)."""

    def canonical_query_string(self, request):
        return urlsplit(request.url).query


class _SignsPathAsSent(SigV4Auth):
    """A client that signs the path as sent instead of URI-encoding it (as curl before 8.14 does)."""

    def _normalize_url_path(self, path):
        return path


class _LeavesDateUnsigned(SigV4Auth):
    """A client that sends X-Amz-Date (or Date) but leaves it out of SignedHeaders."""

    def headers_to_sign(self, request):
        headers = super().headers_to_sign(request)
        del headers["x-amz-date"]
        del headers["date"]
        return headers


def test_query_signed_unsorted_returns_403_while_the_same_signer_passes_a_sorted_query(base_url):
    sorted_query = botocore_request("GET", base_url + "/whoami?limit=5&status=RUNNING", signer=_SignsQueryAsSent)
    unsorted_query = botocore_request("GET", base_url + "/whoami?status=RUNNING&limit=5", signer=_SignsQueryAsSent)

    assert (sorted_query.status_code, sorted_query.json()["query"]) == (200, {"limit": "5", "status": "RUNNING"})
    assert (unsorted_query.status_code, unsorted_query.json()) == (403, MISMATCH)


@pytest.mark.parametrize("segment", [ENCODED_ARN, ARN, "a%20b", "a b".replace(" ", "%2520")],
                         ids=["encoded-arn", "raw-arn", "encoded-space", "double-encoded-space"])
def test_path_signed_without_uri_encoding_returns_403(base_url, segment):
    response = botocore_request("GET", base_url + "/items/" + segment, signer=_SignsPathAsSent)

    assert response.status_code == 403
    assert response.json() == MISMATCH


def test_path_signed_without_uri_encoding_passes_when_encoding_changes_nothing(base_url):
    # The same client on a path of unreserved characters only: its signature is right.
    response = botocore_request("GET", base_url + "/items/plain-name_1.2~3", signer=_SignsPathAsSent)

    assert (response.status_code, response.json()) == (200, {"arn": "plain-name_1.2~3"})


@pytest.mark.parametrize("date_header, name", [(None, "X-Amz-Date"), ("Thu, 01 Jan 1970 00:00:00 GMT", "Date")],
                         ids=["x-amz-date", "date"])
def test_date_header_left_out_of_signed_headers_returns_403(base_url, date_header, name):
    headers = {"Date": date_header} if date_header else {}

    response = botocore_request("GET", base_url + "/whoami", headers=headers, signer=_LeavesDateUnsigned)

    assert response.status_code == 403
    assert response.json() == {"message": f"'{name}' must be a 'SignedHeader' in the AWS Authorization."}
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_request_dated_by_a_signed_date_header_without_x_amz_date_returns_200(base_url):
    # botocore signs with the Date header when the request has one (SigV4Auth._set_necessary_date_headers).
    response = botocore_request("POST", base_url + "/echo", b'{"n": 1}',
                                headers={"Date": "any", "Content-Type": "application/json"})

    sent = response.request.headers
    assert "X-Amz-Date" not in sent and "SignedHeaders=content-type;date;host" in sent["Authorization"]
    assert (response.status_code, response.json()) == (200, {"body": '{"n": 1}'})


def test_request_dated_by_a_date_header_more_than_5_minutes_old_returns_403(base_url, monkeypatch):
    signed_at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at)

    response = botocore_request("GET", base_url + "/whoami", headers={"Date": "any"})

    assert response.status_code == 403
    assert response.json()["message"].startswith("Signature expired: ")


def test_date_header_that_is_no_date_returns_403_naming_the_value(base_url):
    request = AWSRequest(method="GET", url=base_url + "/whoami", headers={"Date": "any"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION).add_auth(request)
    headers = dict(request.headers, Date="yesterday")

    response = requests.get(base_url + "/whoami", headers=headers, timeout=10)

    assert response.status_code == 403
    assert response.json()["message"].startswith("Date must be in ISO-8601 'basic format'. Got 'yesterday'.")


# AWS's published SigV4 test suite (2011), case get-vanilla: a request dated by an RFC 1123
# Date header, service "host"; computed independently of botocore by AWS.
VANILLA_HEADERS = [("Date", "Mon, 09 Sep 2011 23:36:00 GMT"), ("Host", "host.foo.com")]
VANILLA_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, "
    "SignedHeaders=date;host, "
    "Signature=b27ccfbfa7df52a200ff74193ca6e32d4b48b8856fab7ebf1c595d0670a7e470")


def _vanilla_verifier():
    return SigV4Verifier(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1",
        clock=lambda: datetime.datetime(2011, 9, 9, 23, 36, tzinfo=datetime.timezone.utc), service="host")


def test_aws_test_suite_request_dated_by_rfc_1123_date_header_verifies():
    identity = _vanilla_verifier().verify(
        "GET", "/", VANILLA_HEADERS + [("Authorization", VANILLA_AUTHORIZATION)], b"")

    assert identity.access_key == "AKIDEXAMPLE"


@pytest.mark.parametrize("method, target, headers", [
    ("POST", "/", VANILLA_HEADERS),
    ("GET", "/?a=b", VANILLA_HEADERS),
    ("GET", "/", [("Date", "Mon, 09 Sep 2011 23:36:01 GMT"), ("Host", "host.foo.com")]),
    ("GET", "/", [("Date", "Mon, 09 Sep 2011 23:36:00 GMT"), ("Host", "host.bar.com")]),
], ids=["method", "query", "date", "host"])
def test_aws_test_suite_request_changed_in_any_signed_part_is_refused(method, target, headers):
    with pytest.raises(SignatureError) as refused:
        _vanilla_verifier().verify(method, target, headers + [("Authorization", VANILLA_AUTHORIZATION)], b"")

    assert refused.value.message == MISMATCH["message"]


def test_raw_fragment_in_the_request_target_returns_403_instead_of_hiding_signed_parameters(base_url):
    # Signed: a="1#", b="2". Sent with a raw '#', the app would read only a="1": no client sends one.
    signed = AWSRequest(method="GET", url=base_url + "/whoami?a=1%23&b=2")
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION).add_auth(signed)
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", "/whoami?a=1#&b=2", headers=dict(signed.headers))
        response = connection.getresponse()
        status, body = response.status, json.loads(response.read())
    finally:
        connection.close()

    assert (status, body) == (403, MISMATCH)

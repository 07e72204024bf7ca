"""Dev-only identity pieces: several local IAM callers, and the dev OIDC issuer."""
import json

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local import run
from local.issuer import DevIssuer
from local.sigv4 import SignatureError, SigV4Verifier, principal_identity

URL = "http://127.0.0.1:8000/state-machines"
IDENTITIES = {"approver": ("approver-secret", "arn:aws:sts::123456789012:assumed-role/approvers/ada")}


def _signed_headers(access_key, secret):
    request = AWSRequest(method="GET", url=URL, headers={"Host": "127.0.0.1:8000"})
    SigV4Auth(Credentials(access_key, secret), "execute-api", "us-east-1").add_auth(request)
    return list(request.headers.items())


def test_an_extra_access_key_is_verified_with_its_own_secret_and_names_its_principal():
    verifier = SigV4Verifier("testing", "testing", identities=IDENTITIES)
    identity = verifier.verify("GET", "/state-machines", _signed_headers("approver", "approver-secret"), b"")
    assert identity.as_request_context() == {
        "accessKey": "approver", "userArn": "arn:aws:sts::123456789012:assumed-role/approvers/ada",
        "accountId": "123456789012", "caller": "AROAAPPROVERS00000000:ada", "user": "AROAAPPROVERS00000000:ada",
    }
    # The default key still stands for the local developer
    default = verifier.verify("GET", "/state-machines", _signed_headers("testing", "testing"), b"")
    assert default.user_arn == "arn:aws:iam::123456789012:user/local-developer"


def test_an_extra_access_key_signed_with_another_secret_is_refused():
    verifier = SigV4Verifier("testing", "testing", identities=IDENTITIES)
    with pytest.raises(SignatureError) as refused:
        verifier.verify("GET", "/state-machines", _signed_headers("approver", "testing"), b"")
    assert refused.value.error_type == "InvalidSignatureException"
    with pytest.raises(SignatureError) as unknown:
        verifier.verify("GET", "/state-machines", _signed_headers("nobody", "x"), b"")
    assert unknown.value.error_type == "UnrecognizedClientException"


def test_principal_identity_of_a_user_has_an_aida_id():
    identity = principal_identity("viewer", "arn:aws:iam::123456789012:user/viewer")
    assert (identity.user_arn, identity.account_id, identity.caller) == (
        "arn:aws:iam::123456789012:user/viewer", "123456789012", "AIDAVIEWER00000000000")


def test_local_iam_keys_default_to_a_user_and_an_assumed_role_and_can_be_replaced(monkeypatch):
    monkeypatch.delenv("LOCAL_IAM_KEYS", raising=False)
    arns = [arn for _, arn in run.local_iam_identities().values()]
    assert any(":assumed-role/" in arn for arn in arns) and any(":user/" in arn for arn in arns)
    monkeypatch.setenv("LOCAL_IAM_KEYS", json.dumps({"k": ["s", "arn:aws:iam::123456789012:user/k"]}))
    assert run.local_iam_identities() == {"k": ("s", "arn:aws:iam::123456789012:user/k")}


def test_dev_issuer_publishes_discovery_and_only_public_keys():
    with DevIssuer() as issuer:
        discovery = requests.get(issuer.url + "/.well-known/openid-configuration", timeout=5).json()
        assert (discovery["issuer"], discovery["jwks_uri"]) == (issuer.issuer, issuer.url + "/jwks.json")
        [key] = requests.get(discovery["jwks_uri"], timeout=5).json()["keys"]
        assert (key["kid"], key["kty"], key["alg"], key["use"]) == (issuer.kid, "RSA", "RS256", "sig")
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
        old = issuer.kid
        issuer.rotate()
        assert [k["kid"] for k in requests.get(discovery["jwks_uri"], timeout=5).json()["keys"]] == [old, issuer.kid]
        issuer.available = False
        assert requests.get(discovery["jwks_uri"], timeout=5).status_code == 503


def test_jwt_mode_with_a_configured_issuer_starts_no_dev_issuer(monkeypatch):
    monkeypatch.setenv("AUTH_MODE", "jwt")
    monkeypatch.setenv("JWT_ISSUER", "https://login.example.com")
    assert run.start_issuer("127.0.0.1") is None
    monkeypatch.setenv("AUTH_MODE", "iam")
    monkeypatch.delenv("JWT_ISSUER")
    assert run.start_issuer("127.0.0.1") is None


def test_make_run_with_a_bad_auth_mode_names_the_setting_and_exits():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "AUTH_MODE": "oidc", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run([sys.executable, "-m", "local.run", "--port", "0", "--sfn-port", "0"],
                          cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "AUTH_MODE must be one of iam, cognito, jwt, got 'oidc'" in done.stderr
    assert "Traceback" not in done.stderr

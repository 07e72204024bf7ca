"""Hostile and malformed bearer tokens, shared by the in-process and end-to-end JWT tests."""
import base64
import hashlib
import hmac
import json
import random
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from local.issuer import DevIssuer, new_signing_key


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWTs use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict) -> str:
    """One JSON segment of a JWT."""
    return b64url(json.dumps(value).encode())


def unsigned_token(claims: dict, kid: str) -> str:
    """alg "none": no signature at all."""
    return f"{segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{segment(claims)}."


def hs256_with_public_key(issuer: DevIssuer, claims: dict) -> str:
    """The algorithm-confusion forgery: HMAC-SHA256 keyed with the issuer's public key (PEM)."""
    public_pem = issuer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': issuer.kid})}.{segment(claims)}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def tampered(token: str, **changes) -> str:
    """The token with claims changed but the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{segment(claims)}.{signature}"


def hostile_tokens(issuer: DevIssuer) -> dict:
    """Name -> a token that must be refused, each breaking exactly one rule."""
    now = int(time.time())
    good_claims = issuer.claims("mallory", groups=["approvers"])
    other_kid, other_key = new_signing_key()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "alg none": unsigned_token(good_claims, issuer.kid),
        "HS256 signed with the public key": hs256_with_public_key(issuer, good_claims),
        "expired": issuer.mint("mallory", exp=now - 120, iat=now - 3600, nbf=now - 3600),
        "not yet valid": issuer.mint("mallory", nbf=now + 300),
        "issued in the future": issuer.mint("mallory", iat=now + 300, nbf=now),
        "wrong issuer": issuer.mint("mallory", iss="https://evil.example.com"),
        "wrong audience": issuer.mint("mallory", aud="another-api"),
        "no expiry": jwt.encode({k: v for k, v in good_claims.items() if k != "exp"}, issuer.private_key,
                                algorithm="RS256", headers={"kid": issuer.kid}),
        "no subject": jwt.encode({k: v for k, v in good_claims.items() if k != "sub"}, issuer.private_key,
                                 algorithm="RS256", headers={"kid": issuer.kid}),
        "unknown kid": jwt.encode(good_claims, other_key, algorithm="RS256", headers={"kid": other_kid}),
        "tampered payload": tampered(issuer.mint("bob", groups=[]), sub="ada", groups=["approvers"]),
        "another issuer's key under our kid": jwt.encode(good_claims, other_key, algorithm="RS256",
                                                         headers={"kid": issuer.kid}),
        "ES256 with a key not in the JWKS": jwt.encode(good_claims, ec_key, algorithm="ES256",
                                                       headers={"kid": issuer.kid}),
        "no kid": jwt.encode(good_claims, issuer.private_key, algorithm="RS256"),
        "signature stripped": issuer.mint("mallory").rsplit(".", 1)[0] + ".",
    }


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \t\"{}:,\\\x00é€"


def malformed_tokens(issuer: DevIssuer, count: int, seed: int = 20261126) -> list:
    """count malformed tokens (seeded, reproducible): mutations of a valid one and random junk."""
    rng = random.Random(seed)
    valid = issuer.mint("fuzz", groups=["approvers"])
    header, payload, signature = valid.split(".")
    algs = ["none", "None", "NONE", "HS256", "HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA", "", None, 1, ["RS256"]]
    kids = [issuer.kid, "", None, 0, "../../etc/passwd", "x" * 3000, {"a": 1}, "unknown"]

    def mutate_bytes(text: str) -> str:
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(chars))
            chars[position] = rng.choice(_ALPHABET)
        return "".join(chars)

    makers = [
        lambda: mutate_bytes(valid),
        lambda: valid[: rng.randrange(1, len(valid))],
        lambda: f"{header}.{payload}.{mutate_bytes(signature)}",
        lambda: f"{segment({'alg': rng.choice(algs), 'kid': rng.choice(kids), 'typ': 'JWT'})}.{payload}.{signature}",
        lambda: f"{header}.{b64url(rng.randbytes(rng.randint(0, 200)))}.{signature}",
        lambda: ".".join(b64url(rng.randbytes(rng.randint(0, 64))) for _ in range(rng.randint(1, 6))),
        lambda: "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 300))),
        lambda: f"{segment({'alg': 'RS256', 'kid': issuer.kid})}.{b64url(b'[1,2,3]')}.{signature}",
        lambda: f"{segment({'alg': 'RS256', 'kid': issuer.kid})}.{b64url(b'not json')}.{signature}",
        lambda: f"{header}.{segment({'sub': 'x', 'exp': rng.choice([1e308, -1, 'soon', None, [1]]), 'iat': 'x'})}.{signature}",
        lambda: f"{b64url(b'{')}.{payload}.{signature}",
        lambda: f"{header}..{signature}",
        lambda: f"{header}.{payload}",
        lambda: valid + "." + valid,
        lambda: f"{header}.{payload}.{signature}" + "A" * rng.randint(1, 9000),
    ]
    tokens = set()
    while len(tokens) < count:
        token = rng.choice(makers)()
        if not _decodes_like(token, valid):
            tokens.add(token)
    return sorted(tokens)


def _lenient_segments(token: str):
    try:
        return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]
    except ValueError:
        return None


def _decodes_like(token: str, valid: str) -> bool:
    # A changed character may only touch base64 padding bits: then the token still says exactly
    # what the valid one says, and accepting it is right, so it is no malformed token.
    return _lenient_segments(token) == _lenient_segments(valid)

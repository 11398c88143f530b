"""Who may call the encoder-job API: a VideoSDK-style JWT in `Authorization`, with no `Bearer ` prefix.

Tokens are HS256, signed with the API secret, and carry `apikey` (the configured API key) and `exp`.
Mint them with `vodflow.providers.videosdk.mint_token(api_key, secret)` or any JWT library.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

import jwt

LEEWAY_SECONDS = 5.0


class Unauthorized(Exception):
    """The request carries no valid token; the message says why and never echoes the token."""


def verify_token(
    authorization: str | None, api_key: str, secret: str, *, max_ttl: float | None = None
) -> dict[str, Any]:
    """The claims of the token in an `Authorization` header value; Unauthorized when it is not valid.

    A `Bearer ` prefix is tolerated, although VideoSDK's clients send the bare token. With `max_ttl`, a token
    whose `exp` lies further ahead than that many seconds is refused: a leaked long-lived token is a key.
    """
    token = (authorization or "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise Unauthorized("missing Authorization header: send the JWT as its value")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["exp", "apikey"]},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidAlgorithmError:
        raise Unauthorized("token must be signed with HS256") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("token signature does not match") from None
    except jwt.PyJWTError:
        raise Unauthorized("malformed token") from None
    if not hmac.compare_digest(str(claims["apikey"]).encode(), api_key.encode()):
        raise Unauthorized("unknown apikey")
    if max_ttl is not None and float(claims["exp"]) - time.time() > max_ttl + LEEWAY_SECONDS:
        raise Unauthorized(f"token lives too long: exp may be at most {max_ttl:g} s ahead")
    return claims

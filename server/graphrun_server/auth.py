"""Authentication: bearer tokens in the `authorization` metadata, checked before any handler.

JWTs are verified with PyJWT — signature (HS256 with a shared secret; RS256/ES256
with a PEM public key or a JWKS file), expiry, not-before, audience and issuer
— or matched against static API keys. The caller's identity (the token's `sub`,
or the API key's name) is what later layers use as the owner. Health and
reflection stay open unless configured otherwise. Tokens are never logged.
"""

from __future__ import annotations

import contextlib
import contextvars
import hmac
import ipaddress
import json
import logging
import pathlib
from dataclasses import dataclass, field

import grpc
import jwt
from grpc_status import rpc_status

from .errors import GraphrunError
from .interceptors import wrap

log = logging.getLogger(__name__)

caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("graphrun_caller", default=None)
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/",
                 "/grpc.reflection.v1alpha.ServerReflection/")


class Unauthenticated(GraphrunError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class AuthSettings:
    jwt_secret: str | None = None  # HS256
    jwt_public_key_file: str | None = None  # RS256 / ES256, PEM
    jwks_file: str | None = None  # RS256 / ES256, a JWKS document
    audience: str | None = None
    issuer: str | None = None
    api_keys_file: str | None = None  # JSON object: {"key": "caller name"}
    open_health: bool = True  # health and reflection without a token
    _keys: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key_file or self.jwks_file or self.api_keys_file)


def check_listen_address(host: str, auth: AuthSettings, allow_unauthenticated: bool) -> None:
    """Without authentication, serve only on loopback unless told it is meant to be open."""
    if auth.enabled or allow_unauthenticated:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing to listen on {host} without authentication: configure GRAPHRUN_JWT_SECRET, "
                         "GRAPHRUN_JWT_PUBLIC_KEY_FILE, GRAPHRUN_JWKS_FILE or GRAPHRUN_API_KEYS_FILE, or set "
                         "GRAPHRUN_ALLOW_UNAUTHENTICATED=1 if trusted networking protects it")


class Authenticator:
    def __init__(self, settings: AuthSettings):
        self.settings = settings
        self._verify_key = None
        self._algorithms: list[str] = []
        if settings.jwt_secret:
            self._verify_key, self._algorithms = settings.jwt_secret, ["HS256"]
        elif settings.jwt_public_key_file:
            self._verify_key = pathlib.Path(settings.jwt_public_key_file).read_text()
            self._algorithms = ["RS256", "ES256"]
        self._jwks = None
        if settings.jwks_file:
            self._jwks = jwt.PyJWKSet.from_dict(json.loads(pathlib.Path(settings.jwks_file).read_text()))
        self._api_keys: dict[str, str] = {}
        if settings.api_keys_file:
            self._api_keys = json.loads(pathlib.Path(settings.api_keys_file).read_text())

    def identify(self, authorization: str | None) -> str:
        """The caller named by an `authorization` header value; raises Unauthenticated."""
        if not authorization:
            raise Unauthenticated("TOKEN_MISSING", "this call needs an `authorization: Bearer <token>` header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("TOKEN_MALFORMED", "the authorization header must be `Bearer <token>`")
        for key, name in self._api_keys.items():
            if hmac.compare_digest(key.encode(), token.encode()):
                return name
        if self._verify_key is None and self._jwks is None:
            raise Unauthenticated("TOKEN_INVALID", "unknown API key")
        try:
            key = self._verify_key
            if self._jwks is not None:
                kid = jwt.get_unverified_header(token).get("kid")
                key = next((k.key for k in self._jwks.keys if k.key_id == kid), None) if kid else None
                if key is None:
                    raise Unauthenticated("TOKEN_INVALID", "the token's key id is not in the JWKS")
            claims = jwt.decode(token, key, algorithms=self._algorithms or ["RS256", "ES256"],
                                audience=self.settings.audience, issuer=self.settings.issuer,
                                options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("TOKEN_EXPIRED", "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("TOKEN_NOT_YET_VALID", "the token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("TOKEN_INVALID", "the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("TOKEN_INVALID", "the token comes from another issuer") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated("TOKEN_INVALID", f"the token is not valid ({type(exc).__name__})") from None
        return str(claims["sub"])


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without a valid token (UNAUTHENTICATED) and records who the caller is."""

    def __init__(self, authenticator: Authenticator):
        self.auth = authenticator

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or (self.auth.settings.open_health and details.method.startswith(OPEN_SERVICES)):
            return handler
        headers = dict(details.invocation_metadata or ())
        try:
            who = self.auth.identify(headers.get("authorization"))
        except Unauthenticated as exc:
            log.info("refused %s: %s", details.method, exc.reason)  # never the token itself
            return wrap(handler, _as_caller(None, rpc_status.to_status(exc.to_status())), bidi=True)
        return wrap(handler, _as_caller(who, None), bidi=True)


def _as_caller(who: str | None, refusal):
    """Each call runs as `who` — or, with a refusal, only refuses."""

    @contextlib.asynccontextmanager
    async def around(request, context, streaming: bool):
        if refusal is not None:
            await context.abort_with_status(refusal)
        caller.set(who)
        yield

    return around

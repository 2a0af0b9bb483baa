"""Authentication: bearer tokens in the `authorization` metadata, checked before any handler.

JWTs are verified with PyJWT — signature (HS256 with a shared secret; RS256/ES256
with a PEM public key or a JWKS file), expiry, not-before, audience and issuer
— or matched against static API keys. With `GRAPHRUN_AUTH_MTLS`, a call without a
token is the service its verified client certificate names (the SPIFFE id of its URI
SAN, else its subject CN), as services in a mesh expect. The caller's identity (the
token's `sub`, the API key's name, the certificate's id) is what later layers use as
the owner. Scopes widen or narrow that: `graphrun:admin` sees and acts on every
owner's resources, `graphrun:read` may only read. Health and reflection stay open
unless configured otherwise. Tokens are never logged.
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
# The caller holds the admin scope: it sees every owner's resources (owner filters are off).
admin: contextvars.ContextVar[bool] = contextvars.ContextVar("graphrun_admin", default=False)
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
)

ADMIN_SCOPE = "graphrun:admin"
READ_SCOPE = "graphrun:read"
# What a caller holding only the read scope may call: everything else changes something.
READ_METHODS = frozenset(
    {
        "/graphrun.v1.RunService/Get",
        "/graphrun.v1.RunService/List",
        "/graphrun.v1.RunService/Join",
        "/graphrun.v1.ThreadService/Get",
        "/graphrun.v1.ThreadService/List",
        "/graphrun.v1.ThreadService/GetState",
        "/graphrun.v1.ThreadService/GetHistory",
        "/graphrun.v1.CronService/Get",
        "/graphrun.v1.CronService/List",
        "/graphrun.v1.AssistantService/List",
        "/graphrun.v1.AssistantService/Get",
        "/graphrun.v1.AssistantService/ListVersions",
        "/graphrun.v1.StoreService/GetItem",
        "/graphrun.v1.StoreService/SearchItems",
        "/graphrun.v1.StoreService/ListNamespaces",
    }
)


@dataclass(frozen=True)
class Identity:
    """Who calls, and what its scopes let it do."""

    name: str
    scopes: frozenset[str] = frozenset()

    @property
    def admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes

    @property
    def read_only(self) -> bool:
        """Holds the read scope (and so may only read, whatever else it holds)."""
        return READ_SCOPE in self.scopes


def owner_filter() -> str | None:
    """The owner whose resources a call may see: the caller's own, or None (every owner's) without
    authentication or for an admin."""
    return None if admin.get() else caller.get()


class Unauthenticated(GraphrunError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class ReadOnlyScope(GraphrunError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "READ_ONLY_SCOPE"

    def __init__(self, method: str):
        super().__init__(
            f"the caller's scope ({READ_SCOPE}) may read, not call {method.rsplit('/', 1)[-1]}",
            metadata={"method": method},
        )


@dataclass
class AuthSettings:
    jwt_secret: str | None = None  # HS256
    jwt_public_key_file: str | None = None  # RS256 / ES256, PEM
    jwks_file: str | None = None  # RS256 / ES256, a JWKS document
    audience: str | None = None
    issuer: str | None = None
    api_keys_file: str | None = None  # JSON object: {"key": "caller name" | {"name": …, "scopes": […]}}
    open_health: bool = True  # health and reflection without a token
    mtls: bool = False  # a verified client certificate names the caller (needs a client CA)
    _keys: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key_file or self.jwks_file or self.api_keys_file or self.mtls)


def check_listen_address(host: str, auth: AuthSettings, allow_unauthenticated: bool) -> None:
    """Without authentication, serve only on loopback unless told it is meant to be open."""
    if auth.enabled or allow_unauthenticated:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(
            f"refusing to listen on {host} without authentication: configure GRAPHRUN_JWT_SECRET, "
            "GRAPHRUN_JWT_PUBLIC_KEY_FILE, GRAPHRUN_JWKS_FILE or GRAPHRUN_API_KEYS_FILE, or set "
            "GRAPHRUN_ALLOW_UNAUTHENTICATED=1 if trusted networking protects it"
        )


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
        self._api_keys: dict[str, Identity] = {}
        if settings.api_keys_file:
            for key, who in json.loads(pathlib.Path(settings.api_keys_file).read_text()).items():
                self._api_keys[key] = (
                    Identity(who)
                    if isinstance(who, str)
                    else Identity(str(who["name"]), frozenset(who.get("scopes", ())))
                )

    def identify(self, authorization: str | None, peer: dict | None = None) -> Identity:
        """The caller named by an `authorization` header value or, with mTLS identities on and no
        header, by the call's verified client certificate (`peer`: gRPC's auth context); raises
        Unauthenticated."""
        if not authorization and self.settings.mtls:
            return _certificate_identity(peer or {})
        if not authorization:
            raise Unauthenticated("TOKEN_MISSING", "this call needs an `authorization: Bearer <token>` header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("TOKEN_MALFORMED", "the authorization header must be `Bearer <token>`")
        for key, who in self._api_keys.items():
            if hmac.compare_digest(key.encode(), token.encode()):
                return who
        if self._verify_key is None and self._jwks is None:
            raise Unauthenticated("TOKEN_INVALID", "unknown API key")
        try:
            key = self._verify_key
            if self._jwks is not None:
                kid = jwt.get_unverified_header(token).get("kid")
                key = next((k.key for k in self._jwks.keys if k.key_id == kid), None) if kid else None
                if key is None:
                    raise Unauthenticated("TOKEN_INVALID", "the token's key id is not in the JWKS")
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms or ["RS256", "ES256"],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                options={"require": ["exp", "sub"]},
            )
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
        return Identity(str(claims["sub"]), _scopes(claims))


def _scopes(claims: dict) -> frozenset[str]:
    """OAuth 2's `scope` (space-separated) and the `scp` some issuers use (a list or a string)."""
    scopes: set[str] = set()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            scopes.update(value.split())
        elif isinstance(value, list):
            scopes.update(str(v) for v in value)
    return frozenset(scopes)


def _certificate_identity(peer: dict) -> Identity:
    """The service a verified client certificate names: its SPIFFE id, else its subject CN."""
    for key in ("peer_spiffe_id", "x509_common_name"):
        if values := peer.get(key):
            return Identity(values[0].decode())
    raise Unauthenticated(
        "TOKEN_MISSING", "this call needs a client certificate or an `authorization: Bearer <token>` header"
    )


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without a valid token (UNAUTHENTICATED) and records who the caller is."""

    def __init__(self, authenticator: Authenticator):
        self.auth = authenticator

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or (self.auth.settings.open_health and details.method.startswith(OPEN_SERVICES)):
            return handler
        authorization = dict(details.invocation_metadata or ()).get("authorization")
        return wrap(handler, self._as_caller(details.method, authorization), bidi=True)

    def _as_caller(self, method: str, authorization: str | None):
        """Each call runs as its caller, identified from its token or certificate (the certificate
        is known only once the call has its context) — or is refused."""

        @contextlib.asynccontextmanager
        async def around(request, context, streaming: bool):
            try:
                who = self.auth.identify(authorization, context.auth_context() if self.auth.settings.mtls else None)
                if who.read_only and method not in READ_METHODS and not method.startswith(OPEN_SERVICES):
                    raise ReadOnlyScope(method)
            except (Unauthenticated, ReadOnlyScope) as exc:
                log.info("refused %s: %s", method, exc.reason)  # never the token itself
                await context.abort_with_status(rpc_status.to_status(exc.to_status()))
            caller.set(who.name)
            admin.set(who.admin)
            yield

        return around

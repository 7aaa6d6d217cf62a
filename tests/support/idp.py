"""An identity provider as tests meet one: signing keys made here, their public halves published
as a JWKS file that a process serves on loopback, and tokens signed with any of them."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.support import procs
from threadline.shared.storage.embedded import free_port

ISSUER = "https://idp.example.test/"
AUDIENCE = "threadline-tests"


@dataclass
class Provider:
    """Signing keys by kid and the JWKS file a process serves."""

    folder: Path
    url: str
    keys: dict[str, tuple[str, Any]]  # kid -> (alg, private key)

    def publish(self, *kids: str) -> None:
        jwks = {"keys": [self._jwk(kid) for kid in kids]}
        tmp = self.folder / "jwks.json.tmp"
        tmp.write_text(json.dumps(jwks))
        tmp.replace(self.folder / "jwks.json")

    def _jwk(self, kid: str) -> dict[str, Any]:
        alg, key = self.keys[kid]
        algorithm = jwt.get_algorithm_by_name(alg)
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        return {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    def token(self, kid: str, sub: str = "idp-user", **claims: Any) -> str:
        alg, key = self.keys[kid]
        body = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": int(time.time()), "exp": int(time.time()) + 600,
                **claims}
        return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg, headers={"kid": kid})

    def env(self) -> dict[str, str]:
        """What a web process is given to trust this provider."""
        return {"AUTH_JWKS_URL": self.url, "AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE}


@contextlib.contextmanager
def serve_provider(folder: Path) -> Iterator[Provider]:
    """RS256, ES256 and EdDSA keys published (rsa-1, ec-1, ed-1); rsa-2 ready for a rotation; "never"
    never published."""
    port = free_port()
    keys = {"rsa-1": ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "ec-1": ("ES256", ec.generate_private_key(ec.SECP256R1())),
            "ed-1": ("EdDSA", ed25519.Ed25519PrivateKey.generate()),
            "rsa-2": ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "never": ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))}
    idp = Provider(folder, f"http://127.0.0.1:{port}/jwks.json", keys)
    idp.publish("rsa-1", "ec-1", "ed-1")
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        procs.wait_for_port(port, proc)
        yield idp
    finally:
        procs.stop(proc)

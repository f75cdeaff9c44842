"""Key agreement between two clients (X25519 + HKDF-SHA256) and the AES-GCM envelope for shares.

Two clients that know each other's public key derive the same secret without
ever sending it (Diffie–Hellman on Curve25519):

    k_uv = HKDF-SHA256(X25519(sk_u, pk_v), info) = HKDF-SHA256(X25519(sk_v, pk_u), info)

Secure aggregation uses this twice: with the ``s`` keys for the pairwise mask
seeds, and with the ``c`` keys for a channel through the server, whose shares
the server forwards but cannot read (AES-GCM: confidential and tamper-evident).
Public keys are assumed authenticated (a PKI or a trusted roster); without
that, a server could answer with keys of its own (Bonawitz et al. 2017 add
signatures for that case).

>>> from fedlab_core.secure.randomness import byte_source
>>> src = byte_source(b"demo")
>>> alice, bob = KeyPair.generate(src), KeyPair.generate(src)
>>> agree(alice.private, bob.public, info=b"x") == agree(bob.private, alice.public, info=b"x")
True
>>> key = agree(alice.private, bob.public, info=b"channel")
>>> sealed = seal(key, b"a share", aad=b"from alice to bob", nonce=src(NONCE_BYTES))
>>> len(sealed) - len(b"a share") == NONCE_BYTES + TAG_BYTES
True
>>> unseal(key, sealed, aad=b"from alice to bob")
b'a share'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32      # an X25519 public or private key
NONCE_BYTES = 12    # AES-GCM nonce, sent in front of the ciphertext
TAG_BYTES = 16      # AES-GCM authentication tag, appended by the cipher


def public_bytes(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class KeyPair:
    """An X25519 key pair; ``public`` is the 32 raw bytes that travel."""

    private: X25519PrivateKey
    public: bytes

    @classmethod
    def generate(cls, source: Callable[[int], bytes]) -> KeyPair:
        """A key pair whose 32-byte private key is drawn from ``source`` (os.urandom in real use)."""
        return cls.from_private(source(KEY_BYTES))

    @classmethod
    def from_private(cls, raw: bytes) -> KeyPair:
        private = X25519PrivateKey.from_private_bytes(raw)
        return cls(private=private, public=public_bytes(private.public_key()))

    def private_bytes(self) -> bytes:
        return self.private.private_bytes_raw()


def agree(private: X25519PrivateKey, peer_public: bytes, *, info: bytes, length: int = 16) -> bytes:
    """``HKDF-SHA256(X25519(private, peer_public), info)``: the same bytes on both sides."""
    shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(shared)


def seal(key: bytes, plaintext: bytes, *, aad: bytes, nonce: bytes) -> bytes:
    """AES-GCM: ``nonce ‖ ciphertext ‖ tag``; ``aad`` (who to whom) is authenticated, not sent."""
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, message: bytes, *, aad: bytes) -> bytes:
    """Open a sealed message, or raise ``ValueError`` if it was altered or not meant for this key."""
    try:
        return AESGCM(key).decrypt(message[:NONCE_BYTES], message[NONCE_BYTES:], aad)
    except InvalidTag:
        raise ValueError("an encrypted share failed authentication: it was altered on the way or was not "
                         "encrypted for this client") from None

"""Secrets kept only as a hash (API keys, URL tokens, recording links), with a visible prefix."""

import hashlib

PREFIX_LENGTH = 12  # "cbs_" + 8 random characters: tells secrets apart in logs and admin


def hash_secret(plaintext: str) -> str:
    # Our secrets carry 256 random bits, so a fast hash is safe here (no dictionary to attack).
    return hashlib.sha256(plaintext.encode()).hexdigest()

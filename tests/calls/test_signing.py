"""Standard Webhooks signatures: the spec's known-answer vector, and rotation."""

import base64
import hashlib
import hmac

from calls.signing import secret_generate, sign, signature_header

# From the Svix docs (reference/webhooks.md, section 2): re-computed there and here.
VECTOR_SECRET = "whsec_plJ3nmyCDGBKInavdOK15jsl"
VECTOR_ID = "msg_loFOjxBNrRLzqYUf"
VECTOR_TIMESTAMP = 1731705121
VECTOR_BODY = b'{"event_type":"ping","data":{"success":true}}'
VECTOR_SIGNATURE = "v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0="


def test_it_signs_the_known_answer_vector():
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_every_live_secret_signs_so_either_verifies():
    old, new = VECTOR_SECRET, secret_generate()

    header = signature_header([new, old], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)

    assert header.split(" ") == [
        sign(new, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
        VECTOR_SIGNATURE,
    ]


def test_generated_secrets_carry_32_random_bytes_behind_whsec():
    secret = secret_generate()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != secret_generate()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """A receiver's check, written from the spec rather than with our signing code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    signatures = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ")]
    return any(hmac.compare_digest(expected, s) for s in signatures)


def test_the_receiver_check_accepts_the_vector():
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }

    assert verify(VECTOR_SECRET, headers, VECTOR_BODY)
    assert not verify(VECTOR_SECRET, headers, VECTOR_BODY + b" ")

"""Measure how many operations per second the token does (:mod:`labsupport.plots.throughput`
draws them).

Counts are small on purpose (a fraction of a second per operation) so a lesson stays
fast; the numbers vary from run to run and machine to machine — look at the *ratios*:
symmetric operations are cheap, RSA private-key operations are expensive, RSA key
generation is very expensive. SoftHSM runs on your CPU in one process; a CloudHSM cluster
has dedicated hardware, and its published throughput grows with the number of HSMs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pkcs11

from labsupport.crypto.ciphers import aes_gcm_encrypt, rsa_oaep_decrypt, rsa_oaep_encrypt
from labsupport.crypto.keygen import KeySpec, Usage, generate_key_pair, generate_secret_key
from labsupport.crypto.mac import hmac_sign
from labsupport.crypto.signatures import SignatureScheme, sign
from labsupport.crypto.wrapping import WrapMechanism, wrap_key

# Published CloudHSM figures (ops/s with 2 HSMs; AWS CloudHSM user guide, "Performance").
CLOUDHSM_PUBLISHED: dict[str, float] = {
    "RSA-2048 sign (PSS)": 2_000,
    "EC P-256 sign (ECDSA)": 3_000,  # hsm2m.medium; hsm1.medium: 500
}


@dataclass(frozen=True)
class Throughput:
    """One measurement: ``count`` operations took ``seconds``."""

    operation: str
    count: int
    seconds: float

    @property
    def ops_per_second(self) -> float:
        """Operations per second."""
        return self.count / self.seconds if self.seconds > 0 else float("inf")

    def __str__(self) -> str:
        rate = f"{self.ops_per_second:>10,.0f} ops/s"
        return f"{self.operation:<28} {rate}  ({self.count} in {self.seconds:.2f} s)"


def measure(
    operation: str,
    fn: Callable[[], Any],
    *,
    budget_s: float = 0.2,
    min_count: int = 3,
    max_count: int = 5_000,
) -> Throughput:
    """Call ``fn`` repeatedly for about ``budget_s`` seconds (at least ``min_count`` times)."""
    count = 0
    start = time.perf_counter()
    elapsed = 0.0
    while count < max_count and (count < min_count or elapsed < budget_s):
        fn()
        count += 1
        elapsed = time.perf_counter() - start
    return Throughput(operation, count, elapsed)


def lesson_benchmark(
    session: pkcs11.Session, *, budget_s: float = 0.15, rsa_keygen: bool = True
) -> list[Throughput]:
    """Measure the lesson's operations on ``session`` with throw-away session keys.

    About ``budget_s`` seconds per operation (RSA key generation: at least one key,
    ~0.2-0.4 s on SoftHSM). The keys are session keys and are destroyed afterwards.
    """
    data = bytes(1024)
    digest_input = b"release-1.0.tar.gz contents"
    aes = generate_secret_key(session, KeySpec.AES_256, "bench-aes", token=False)
    mac = generate_secret_key(session, KeySpec.HMAC_256, "bench-hmac", token=False)
    # token keys: on a cluster every HSM holds both, so any HSM can do the wrap
    kek = generate_secret_key(session, KeySpec.AES_256, "bench-kek", usage=Usage.WRAP)
    target = generate_secret_key(session, KeySpec.AES_256, "bench-target")
    ec_pair = generate_key_pair(session, KeySpec.EC_P256, "bench-ec", token=False)
    rsa_pair = generate_key_pair(
        session, KeySpec.RSA_2048, "bench-rsa", usage=Usage.SIGN | Usage.ENCRYPT, token=False
    )
    oaep_ct = rsa_oaep_encrypt(rsa_pair.public, bytes(32))
    made: list[pkcs11.Key] = [aes, mac, kek, target, *ec_pair, *rsa_pair]

    def aes_keygen() -> None:
        made.append(generate_secret_key(session, KeySpec.AES_256, "bench-gen", token=False))

    def ec_keygen() -> None:
        made.extend(generate_key_pair(session, KeySpec.EC_P256, "bench-gen", token=False))

    def rsa_gen() -> None:
        made.extend(generate_key_pair(session, KeySpec.RSA_2048, "bench-gen", token=False))

    plan: list[tuple[str, Callable[[], Any], dict[str, Any]]] = [
        ("AES-256-GCM encrypt 1 KiB", lambda: aes_gcm_encrypt(aes, data), {}),
        ("HMAC-SHA256 1 KiB", lambda: hmac_sign(mac, data), {}),
        ("AES key wrap (KWP)", lambda: wrap_key(kek, target, WrapMechanism.AES_KEY_WRAP_PAD), {}),
        (
            "EC P-256 sign (ECDSA)",
            lambda: sign(ec_pair.private, digest_input, SignatureScheme.ECDSA_SHA256),
            {},
        ),
        (
            "RSA-2048 sign (PSS)",
            lambda: sign(rsa_pair.private, digest_input, SignatureScheme.RSA_PSS_SHA256),
            {},
        ),
        ("RSA-2048 OAEP decrypt", lambda: rsa_oaep_decrypt(rsa_pair.private, oaep_ct), {}),
        ("AES-256 keygen (session)", aes_keygen, {"max_count": 300}),
        ("EC P-256 keygen", ec_keygen, {"max_count": 100}),
    ]
    if rsa_keygen:
        plan.append(("RSA-2048 keygen", rsa_gen, {"min_count": 1, "budget_s": 0.0}))
    try:
        results = []
        for name, fn, options in plan:
            options = {"budget_s": budget_s, **options}
            results.append(measure(name, fn, **options))
        return results
    finally:
        for key in made:
            key.destroy()


def throughput_table(results: list[Throughput]) -> str:
    """The measurements as aligned text, fastest first."""
    return "\n".join(str(r) for r in sorted(results, key=lambda r: -r.ops_per_second))

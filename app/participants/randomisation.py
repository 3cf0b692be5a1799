"""Permuted-block randomisation stratified by site, concealed by a keyed shuffle.

The allocation sequence of a block is derived from the server secret, so nobody can predict the
next arm from the ones already assigned, and the same secret always reproduces it for an audit.
"""

import hashlib
import hmac
import random

from app.protocols.schema import Protocol


def block_for(protocol: Protocol, secret: str, stratum: str, block_index: int) -> list[str]:
    scheme = protocol.randomisation
    arms = protocol.arm_codes()
    if scheme is None:
        return [arms[0]]
    repeats = scheme.block_size // sum(scheme.ratio)
    block = [
        arm for arm, share in zip(arms, scheme.ratio, strict=True) for _ in range(share * repeats)
    ]
    seed = hmac.new(secret.encode(), f"{stratum}:{block_index}".encode(), hashlib.sha256).digest()
    random.Random(seed).shuffle(block)  # noqa: S311 - keyed and reproducible on purpose
    return block


def allocate(protocol: Protocol, secret: str, stratum: str, already_randomised: int) -> str:
    size = protocol.randomisation.block_size if protocol.randomisation else 1
    block = block_for(protocol, secret, stratum, already_randomised // size)
    return block[already_randomised % size]

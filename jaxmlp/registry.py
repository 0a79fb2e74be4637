"""Names of the pluggable concepts: activations and losses (stub of the registry).

Every list of valid names (the config's validation, the CLI's choices, gradcheck, the docs)
reads from here. Importing this module does not import JAX.
"""
from __future__ import annotations

ACTIVATION_NAMES = ("tanh", "relu", "sigmoid", "identity")
LOSS_NAMES = ("auto", "ce", "mse")


def activation_names() -> tuple[str, ...]:
    return ACTIVATION_NAMES


def loss_names() -> tuple[str, ...]:
    """Loss names a config accepts ("auto" picks by task)."""
    return LOSS_NAMES

"""Offline testing for agents: a fake chat-completions server, a function model, a network guard."""

from ._guard import NetworkBlockedError, block_network

__all__ = ["NetworkBlockedError", "block_network"]

"""What Segin's processes agree on: payloads, channels, scopes and reference lists.

Services and the gateway import this package and the kernel, never one another.
"""

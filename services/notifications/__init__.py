"""Notifications: tell the right organisation at the right time (in-app inbox first)."""

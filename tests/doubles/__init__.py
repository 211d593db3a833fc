"""Test doubles of the platforms, written from ../shared/PLATFORMS.md.

Each one signs and encrypts with the platform's real algorithm and talks to qunpulse over
real HTTP, the way the platform would.
"""

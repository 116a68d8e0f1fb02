"""The demo league (see build.py)."""

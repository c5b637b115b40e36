"""Hit/no-hit with partner authorities through private set intersection (issue 7)."""

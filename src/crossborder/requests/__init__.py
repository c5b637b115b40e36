"""Requests: asking a partner for preservation, evidence, information, arrest or assets."""

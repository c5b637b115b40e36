"""Threat intelligence: STIX 2.1 objects under TLP 2.0 and law-enforcement handling codes."""

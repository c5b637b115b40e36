"""Directory: partners, contact points, peer nodes, legal instruments and the legal-basis policy.

Pure modules (``taxonomy``, ``policy``, ``hours``) hold the rules; ``service`` is the only
way in for routes, the CLI and other capabilities.
"""

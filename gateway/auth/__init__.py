"""The authorization server: OAuth 2.0 / OpenID Connect for organisations' systems and their people.

``server`` (authlib's core, with ``grants``, ``models``, ``credentials``, ``requests``),
``discovery`` (published metadata), ``login`` and ``pages`` (the sign-in page), ``people`` and
``passwords`` (accounts, the one hasher), ``lockout``, ``known`` and ``throttle`` (failed attempts),
``revocation`` (telling every process). Their SQL is in ``gateway/store/``.
"""

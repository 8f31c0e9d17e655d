"""Follow-up (suivi): who manages a case after reception, its reintegration plan, closure and re-opening.

The survey instrument (``instrument.py``, ``instruments/``) is not wired yet.
"""

"""Referral (accompagnement, suivi): the service directory, routing rules and referrals."""

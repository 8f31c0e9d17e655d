"""Intake (accueil): registers arrivals, screening and consent at the point of arrival."""

"""Analytic key-rate engine: asymptotic and finite-key bounds, checked against their papers."""

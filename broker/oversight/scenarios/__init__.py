"""Shipped replay scenarios: a Hesley-shaped one, a population of ordinary settings and a national-scale year."""

"""Figures of runs and evaluations (``iuie report``): matplotlib, headless."""

"""Notebook CI: evaluation notebooks run with papermill against model versions, then gates."""

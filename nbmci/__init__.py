"""nbmci: model CI/CD that lives in Jupyter."""

"""Request codecs: Open Inference Protocol v2 (``v2``) and MLflow's scoring format (``mlflow``).

Both decode a request into a 2-D float matrix in the model's feature order, checked against
the version's signature by ``features``, and encode the predictions back.
"""

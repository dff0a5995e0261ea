"""What a worker is doing, for people and for Prometheus: Faust's sensor hooks exported as
metrics, and a status page (JSON and HTML) built from the same registry."""

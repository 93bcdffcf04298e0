"""The monitoring area of the control plane.

`install.py` starts this area's loops on the control plane: health and alert evaluation,
rollups and retention, retraining triggers; the Prometheus endpoint (server.metrics_port,
None = off) and the alert webhooks (config.alerts.webhooks).
"""

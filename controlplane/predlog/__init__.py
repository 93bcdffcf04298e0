"""The prediction log on the control plane (docs/PREDICTION_LOG.md): segments agents ship over
AgentHub (`segments`), and each deployment's sample rate (`sampling`)."""

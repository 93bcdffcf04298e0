"""The agenthub area of the control plane: serving agents connect here for their snapshots
(the gRPC servicer and its `install` are `controlplane/api/agenthub_service.py`)."""

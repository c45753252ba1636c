"""hakit: prove a self-managed HA Kubernetes cluster is highly available."""

__version__ = "0.1.0"

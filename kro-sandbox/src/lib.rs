//! kro-sandbox: a Kubernetes API server that runs in-process on loopback.

"""pyinfra facts of the etcd PKI: one fact per concern, read in one command."""

"""pyinfra operations of the etcd PKI."""

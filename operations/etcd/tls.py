"""What etcd's TLS settings accept: the cipher suite names of Go's crypto/tls that etcd 3.5
takes (`tlsutil.GetCipherSuite`), and the rule that TLS 1.3 suites are not configurable."""

from __future__ import annotations

# TLS 1.0-1.2 suites of tls.CipherSuites(), and etcd's two short CHACHA20 aliases.
CIPHER_SUITES = frozenset(
    {
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    }
)
# tls.InsecureCipherSuites(): etcd 3.5 would take them; this tool does not configure them.
INSECURE_CIPHER_SUITES = frozenset(
    {
        "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    }
)
# TLS 1.3 suites: Go always enables them and takes no configuration of them.
TLS13_CIPHER_SUITES = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)


def cipher_suite_problem(name: str) -> str | None:
    """Why etcd (or this tool) would refuse a cipher suite name, or None."""
    if name in CIPHER_SUITES:
        return None
    if name in INSECURE_CIPHER_SUITES:
        return f"{name} is insecure (Go's tls.InsecureCipherSuites)"
    if name in TLS13_CIPHER_SUITES:
        return f"{name} is a TLS 1.3 suite: Go enables those itself and takes no configuration"
    return f"{name} is no cipher suite of Go's crypto/tls that etcd accepts"


def suites_with_version_problem(suites: tuple[str, ...], min_version: str) -> str | None:
    """etcd refuses cipher suites when TLS 1.3 is the minimum (they would never be used)."""
    if suites and min_version == "TLS1.3":
        return "cipher suites cannot be set with etcd_tls_min_version TLS1.3 (etcd refuses it)"
    return None

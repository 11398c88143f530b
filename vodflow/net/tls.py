"""The CA bundle vodflow's HTTP clients verify TLS with: `SSL_CERT_FILE` (OpenSSL's), else certifi's."""

from __future__ import annotations

import os
import ssl

import certifi


def ca_bundle() -> str:
    """Path of the CA bundle: `SSL_CERT_FILE` when set (a corporate CA), else certifi's."""
    return os.environ.get("SSL_CERT_FILE") or certifi.where()


def ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle())

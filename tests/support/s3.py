"""A client of the local S3 server (moto, on 127.0.0.1) that the ``s3_endpoint`` fixture starts."""

from __future__ import annotations

import pytest

CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "region_name": "us-east-1",
}


def s3_client(endpoint: str):
    boto3 = pytest.importorskip("boto3")
    return boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)


def use_s3_endpoint(monkeypatch, endpoint: str) -> None:
    """Point boto3 and smart_open, as the code under test creates them, at the local server."""
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)

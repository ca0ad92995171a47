"""Print `user:password` from the emulated ECR GetAuthorizationToken (moto), one line.

Used by scripts/testenv to write the auth registry's htpasswd, so that a client doing the real
ECR flow (GetAuthorizationToken -> base64 user:password -> registry basic auth) logs in.
Usage: python testenv_ecr_creds.py ENDPOINT_URL
"""

import base64
import sys

import boto3


def main() -> int:
    endpoint = sys.argv[1]
    ecr = boto3.client(
        "ecr",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    creds = base64.b64decode(token).decode()
    if ":" not in creds:
        print(f"unexpected ECR token payload: {creds!r}", file=sys.stderr)
        return 1
    print(creds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

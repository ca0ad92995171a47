"""Real calls against the running emulators (used by `scripts/testenv check`).

Reads EP_TESTENV_MOTO and EP_TESTENV_LOCALSTACK (set by `testenv env`); fake credentials come
from the environment (AWS_ACCESS_KEY_ID=test ...).
"""

import os
import sys
import time
import uuid

import boto3


def main() -> int:
    moto = os.environ["EP_TESTENV_MOTO"]
    localstack = os.environ.get("EP_TESTENV_LOCALSTACK")  # absent with EP_TESTENV_SKIP_LOCALSTACK
    region = os.environ.get("AWS_REGION", "us-east-1")
    suffix = uuid.uuid4().hex[:8]

    ecr = boto3.client("ecr", endpoint_url=moto, region_name=region)
    name = f"testenv-smoke-{suffix}"
    repo = ecr.create_repository(repositoryName=name)["repository"]
    print(f"moto ECR CreateRepository: {repo['repositoryUri']}")
    ecr.delete_repository(repositoryName=name, force=True)
    if not localstack:
        print("localstack: skipped (EP_TESTENV_LOCALSTACK unset)")
        return 0

    ssm = boto3.client("ssm", endpoint_url=localstack, region_name=region)
    pname = f"/ep/testenv-smoke/{suffix}"
    t = time.monotonic()
    ssm.put_parameter(Name=pname, Value="hello", Type="SecureString", Overwrite=True)
    value = ssm.get_parameter(Name=pname, WithDecryption=True)["Parameter"]["Value"]
    assert value == "hello", value
    ssm.delete_parameter(Name=pname)
    print(f"localstack SSM Put/Get/DeleteParameter: ok ({time.monotonic() - t:.2f}s)")

    sts = boto3.client("sts", endpoint_url=localstack, region_name=region)
    print(f"localstack STS GetCallerIdentity: {sts.get_caller_identity()['Arn']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

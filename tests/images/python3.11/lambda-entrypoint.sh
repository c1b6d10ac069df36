#!/bin/sh
# /lambda-entrypoint.sh of Stratus' stand-in for public.ecr.aws/lambda/python:3.11
# (built by tests/images/python3.11/build.sh). Same logic as the official
# script (docs: /work/shared/specs/lambda-base-images-and-rie.md §2):
#
#   - exactly one argument, the handler, else exit 142;
#   - export it as _HANDLER;
#   - AWS_LAMBDA_RUNTIME_API set: exec /var/runtime/bootstrap (Lambda mode);
#     unset or empty: exec the Runtime Interface Emulator with the bootstrap.
#
# Difference: the emulator is not bundled (it comes from GitHub, which these
# builds may not contact). Without AWS_LAMBDA_RUNTIME_API the script runs
# /usr/local/bin/aws-lambda-rie if one was mounted or copied there, and
# otherwise says so and exits 1.

if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"

RUNTIME_ENTRYPOINT=/var/runtime/bootstrap
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  if [ -x /usr/local/bin/aws-lambda-rie ]; then
    exec /usr/local/bin/aws-lambda-rie "$RUNTIME_ENTRYPOINT"
  fi
  echo "AWS_LAMBDA_RUNTIME_API is not set, and this stand-in for public.ecr.aws/lambda/python:3.11 does not bundle the Runtime Interface Emulator (/usr/local/bin/aws-lambda-rie): run the image as a Lambda function (e.g. on Stratus), or mount the emulator at /usr/local/bin/aws-lambda-rie" 1>&2
  exit 1
fi
exec "$RUNTIME_ENTRYPOINT"

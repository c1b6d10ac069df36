"""/var/runtime/bootstrap.py of Stratus' stand-in for
public.ecr.aws/lambda/python:3.11 (built by tests/images/python3.11/build.sh).

As in the AWS image: the function's code (LAMBDA_TASK_ROOT) comes first on
sys.path, then the layer directories under /opt/python unless PYTHONPATH is
set; awslambdaric, installed beside this file in /var/runtime, then runs
the handler named by _HANDLER against AWS_LAMBDA_RUNTIME_API.
"""

import os
import sys


def set_default_sys_path():
    if "PYTHONPATH" not in os.environ:
        sys.path.insert(0, "/opt/python")
        sys.path.insert(
            0,
            "/opt/python/lib/python{}.{}/site-packages".format(*sys.version_info[:2]),
        )
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", "/var/task"))


def main():
    set_default_sys_path()
    from awslambdaric import __main__ as awslambdaric_main

    handler = os.environ.get("_HANDLER")
    awslambdaric_main.main([sys.argv[0]] + ([handler] if handler else []))


if __name__ == "__main__":
    main()

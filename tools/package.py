"""`chalice package` for one stage, plus the webhooks' failure destination when the stage has WEBHOOKS.

Chalice cannot declare a Lambda on-failure destination, so it is added here:
SAM through `chalice package --merge-template tools/templates/webhook-failures.sam.json`,
Terraform (which has no merge option) as a second file beside chalice.tf.json, which
Terraform loads with the rest of the directory.

    python -m tools.package --stage dev --pkg-format cloudformation build/dev-sam
    python -m tools.package --stage dev --pkg-format terraform build/dev-tf
"""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from chalicelib.config import config_from_environ
from tools.policy import load_config, stage_environment

PROJECT_DIR = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
SAM_FAILURES = TEMPLATES / "webhook-failures.sam.json"
TERRAFORM_FAILURES = TEMPLATES / "webhook-failures.tf.json"


def stage_has_webhooks(stage: str) -> bool:
    """True when the stage subscribes webhooks (its package then has the webhooks function)."""
    return bool(config_from_environ(stage_environment(load_config(), stage)).webhooks)


def package_command(stage: str, pkg_format: str, out: Path, chalice: str = "chalice") -> list:
    """The chalice command that packages a stage, with the SAM merge template when needed."""
    command = [chalice, "package", "--pkg-format", pkg_format, "--stage", stage]
    if pkg_format == "cloudformation" and stage_has_webhooks(stage):
        command += ["--merge-template", str(SAM_FAILURES)]
    return command + [str(out)]


def package(stage: str, pkg_format: str, out: Path, chalice: str = "chalice", **run_options) -> subprocess.CompletedProcess:
    """Package a stage into out; Terraform output gets webhook_failures.tf.json beside it."""
    result = subprocess.run(package_command(stage, pkg_format, out, chalice), cwd=PROJECT_DIR,
                            capture_output=True, text=True, **run_options)
    if result.returncode == 0 and pkg_format == "terraform" and stage_has_webhooks(stage):
        shutil.copyfile(TERRAFORM_FAILURES, Path(out) / "webhook_failures.tf.json")
    return result


def main(argv=None) -> int:
    """Package one stage in one format."""
    parser = argparse.ArgumentParser(prog="python -m tools.package", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--pkg-format", choices=("cloudformation", "terraform"), default="cloudformation")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    chalice = Path(sys.executable).parent / "chalice"
    result = package(args.stage, args.pkg_format, args.out, str(chalice) if chalice.exists() else "chalice")
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())

"""`make package`: one stage, either format, from a shell with or without AWS settings."""
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]


def _shell(**settings):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    environment.update(settings)
    return environment


def _make_package(environment, *arguments):
    return subprocess.run(["make", "--no-print-directory", "package", *arguments], cwd=PROJECT_DIR,
                          env=environment, capture_output=True, text=True, timeout=120)


# A first-time user's shell: no AWS settings at all, or a region only in AWS_REGION.
SHELLS = {"no-aws-settings": {}, "aws-region-only": {"AWS_REGION": "eu-west-1"}}


@pytest.mark.parametrize("shell", SHELLS)
def test_make_package_writes_the_stages_sam_template_and_bundle(shell, tmp_path):
    made = _make_package(_shell(**SHELLS[shell]), "STAGE=dev", f"PACKAGE_DIR={tmp_path}")

    assert made.returncode == 0, made.stderr
    assert f"Packaged stage dev (cloudformation) into {tmp_path}/" in made.stdout
    template = json.loads((tmp_path / "sam.json").read_text())
    function = template["Resources"]["APIHandler"]  # dev also has the webhooks function
    stage = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())["stages"]["dev"]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["STATE_MACHINES"] == stage["environment_variables"]["STATE_MACHINES"]
    assert "app.py" in zipfile.ZipFile(tmp_path / "deployment.zip").namelist()


def test_make_package_with_terraform_format_writes_the_terraform_config(tmp_path):
    made = _make_package(_shell(), "STAGE=prod", "FORMAT=terraform", f"PACKAGE_DIR={tmp_path}")

    assert made.returncode == 0, made.stderr
    terraform = json.loads((tmp_path / "chalice.tf.json").read_text())
    assert "aws_lambda_function" in terraform["resource"]
    assert (tmp_path / "deployment.zip").is_file()


def test_make_package_defaults_to_an_ignored_folder_per_stage_and_format():
    planned = subprocess.run(["make", "-n", "--no-print-directory", "package", "STAGE=prod", "FORMAT=terraform"],
                             cwd=PROJECT_DIR, capture_output=True, text=True, timeout=30)

    assert "-m tools.package --stage prod --pkg-format terraform out/prod-terraform" in planned.stdout
    ignored = subprocess.run(["git", "check-ignore", "out/prod/sam.json", "out/prod-terraform/chalice.tf.json"],
                             cwd=PROJECT_DIR, capture_output=True, text=True, timeout=30)
    assert ignored.stdout.split() == ["out/prod/sam.json", "out/prod-terraform/chalice.tf.json"]

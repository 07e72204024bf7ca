"""Build the Lambda layer that brings PyJWT + cryptography to jwt stages' authorizer function.

Why a layer: requirements.txt is packaged into every stage's deployment.zip (and must stay
empty so IAM and Cognito stages stay small); cryptography alone is megabytes. The layer is
attached only to the `jwt_authorizer` function of jwt stages, through
`stages.<stage>.lambda_functions.jwt_authorizer.layers` in .chalice/config.json, so the API
function and every other stage never carry it.

    python -m tools.jwt_layer [--arch x86_64|arm64] [--out build/jwt-layer.zip]
    aws lambda publish-layer-version --layer-name sfn-gateway-jwt --zip-file fileb://build/jwt-layer.zip \
        --compatible-runtimes python3.11 --compatible-architectures x86_64
"""
import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The same pins as requirements-dev.txt, so tests and the layer verify tokens with the same code.
LAYER_REQUIREMENTS = ("PyJWT", "cryptography")
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}


def pinned_requirements(requirements: Path = PROJECT_DIR / "requirements-dev.txt") -> list:
    """The layer's packages with their pins from requirements-dev.txt."""
    pins = {}
    for line in requirements.read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if version:
            pins[name.lower()] = f"{name}=={version}"
    missing = [name for name in LAYER_REQUIREMENTS if name.lower() not in pins]
    if missing:
        raise SystemExit(f"requirements-dev.txt must pin {missing}")
    return [pins[name.lower()] for name in LAYER_REQUIREMENTS]


def build_layer(out: Path, arch: str = "x86_64", python_version: str = "3.11") -> int:
    """pip-install Linux wheels of the layer's packages under python/ and zip them; the zip's size."""
    with tempfile.TemporaryDirectory() as staging:
        target = Path(staging) / "python"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
             "--only-binary=:all:", "--platform", PLATFORMS[arch], "--implementation", "cp",
             "--python-version", python_version, "--target", str(target), *pinned_requirements()],
            check=True,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(target.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    bundle.write(path, path.relative_to(staging))
    return out.stat().st_size


def main(argv=None) -> int:
    """Build the layer zip and print its size and how to publish it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "build" / "jwt-layer.zip")
    args = parser.parse_args(argv)
    size = build_layer(args.out, args.arch)
    print(f"{args.out}: {size / 1024 / 1024:.1f} MiB ({size} bytes) for python3.11 {args.arch}")
    print("Publish it, then put the layer version ARN in .chalice/config.json under "
          "stages.<stage>.lambda_functions.jwt_authorizer.layers:")
    print(f"  aws lambda publish-layer-version --layer-name sfn-gateway-jwt --zip-file fileb://{args.out} "
          f"--compatible-runtimes python3.11 --compatible-architectures {args.arch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

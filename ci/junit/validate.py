#!/usr/bin/env python3
"""Validate JUnit XML files against junit-10.xsd, the schema of Jenkins' xUnit plugin.

It is the strictest common reader of JUnit files (times with at most three decimals, required
counts); GitHub's reporter actions and GitLab's test reports accept what it accepts. The schema
ships (MIT licence) in pytest's source distribution, which this script fetches once from PyPI with pip,
checks against pinned digests and caches in target/junit-xsd/. Validation uses the `xmlschema`
package (installed with pip when missing).

    python3 ci/junit/validate.py reports/plur/*/junit.xml
"""

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PYTEST = "8.3.4"
MEMBER = f"pytest-{PYTEST}/testing/example_scripts/junit-10.xsd"
SDIST_SHA256 = "965370d062bce11e73868e0335abac31b4d3de0e82f4007408d242b4f8610761"
XSD_SHA256 = "a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6"
CACHE = Path(os.environ.get("PGDRILL_XSD_CACHE", Path(__file__).resolve().parents[2] / "target" / "junit-xsd"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def schema_path() -> Path:
    xsd = CACHE / "junit-10.xsd"
    if xsd.is_file() and sha256(xsd.read_bytes()) == XSD_SHA256:
        return xsd
    with tempfile.TemporaryDirectory() as tmp:
        requirement = Path(tmp) / "requirements.txt"
        requirement.write_text(f"pytest=={PYTEST} --hash=sha256:{SDIST_SHA256}\n")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             "--require-hashes", "-r", str(requirement), "-d", tmp],
            check=True,
        )
        archive = (Path(tmp) / f"pytest-{PYTEST}.tar.gz").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = tar.extractfile(MEMBER)
        data = member.read() if member else b""
    if sha256(data) != XSD_SHA256:
        sys.exit(f"error: {MEMBER} in pytest {PYTEST} is not the pinned junit-10.xsd")
    CACHE.mkdir(parents=True, exist_ok=True)
    # Tests validate side by side: the schema appears whole or not at all (a rename), never
    # truncated under another validator that is reading it.
    with tempfile.NamedTemporaryFile(dir=CACHE, prefix=".junit-10.xsd.", delete=False) as part:
        part.write(data)
    os.chmod(part.name, 0o644)
    os.replace(part.name, xsd)
    return xsd


def xmlschema_module():
    try:
        import xmlschema
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "xmlschema"], check=True)
        import xmlschema
    return xmlschema


def main(files: list[str]) -> int:
    if not files:
        sys.exit("usage: validate.py JUNIT.xml...")
    schema = xmlschema_module().XMLSchema(str(schema_path()))
    bad = 0
    for name in files:
        errors = list(schema.iter_errors(name))
        for error in errors[:5]:
            print(f"{name}: {error.reason} (at {error.path})", file=sys.stderr)
        if errors:
            bad += 1
        else:
            print(f"{name}: valid against junit-10.xsd")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Generate the Python gRPC code for protos/ into taskgate/orchestrator/v1/, or check it is fresh.

Usage: python scripts/generate_protos.py [--check]

With --check nothing is written: the code is generated into a temporary directory and compared
with the committed files, and the exit status is 1 when they differ.
"""

import filecmp
import pathlib
import sys
import tempfile

import grpc_tools
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE_PATH = pathlib.Path("taskgate/orchestrator/v1")
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_dir: pathlib.Path) -> None:
    """Run protoc over every .proto file, writing the generated modules below out_dir."""
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_PATH).glob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generated_files(directory: pathlib.Path) -> set[str]:
    """Return the names of the generated modules in directory."""
    return {p.name for p in directory.glob("*") if p.name.endswith(GENERATED_SUFFIXES)}


def main() -> int:
    """Generate, or with --check compare against what is committed."""
    check = "--check" in sys.argv[1:]
    target = ROOT / PACKAGE_PATH
    with tempfile.TemporaryDirectory() as tmp:
        fresh = pathlib.Path(tmp)
        generate(fresh)
        fresh_pkg = fresh / PACKAGE_PATH
        names = generated_files(fresh_pkg)
        if check:
            stale = sorted(
                name
                for name in names | generated_files(target)
                if not (target / name).exists()
                or not (fresh_pkg / name).exists()
                or not filecmp.cmp(fresh_pkg / name, target / name, shallow=False)
            )
            if stale:
                print("generated code is stale; run `make protos`:", ", ".join(stale))
                return 1
            print(f"generated code is fresh ({len(names)} files)")
            return 0
        target.mkdir(parents=True, exist_ok=True)
        for old in generated_files(target) - names:
            (target / old).unlink()
        for name in names:
            (target / name).write_bytes((fresh_pkg / name).read_bytes())
        for package in (target, target.parent):
            (package / "__init__.py").touch()
        print(f"generated {len(names)} files into {PACKAGE_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

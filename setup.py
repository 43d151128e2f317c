"""The build step pyproject.toml cannot declare: the wheel carries each .proto of proto/ beside
its generated module (scfed/<agency>/v1/), at its import path, so a client in another language
compiles the contracts from the installed package (protoc -I site-packages). proto/ stays their
one copy in the tree."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithProtos(build_py):
    """build_py, then each proto/**/*.proto into the build tree at its import path."""

    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "proto"
        for proto in sorted(source.rglob("*.proto")):
            target = Path(self.build_lib) / proto.relative_to(source)
            self.mkpath(str(target.parent))
            self.copy_file(str(proto), str(target))


setup(cmdclass={"build_py": BuildPyWithProtos})

"""Packages the Python module that the project's CMake builds (python/, docs/python.md).

`pip install --no-build-isolation .` configures build/ (or $SEMCODEC_BUILD_DIR) when
it has no CMake cache, builds the semcodec_python target there and installs
<build>/python/semcodec. The module links the project's static libraries and the
system's LibTorch, so the wheel is for this machine's libraries, not for PyPI.
No build isolation: the build needs no download, and pip's isolated environment
would lack numpy and pybind11, which CMake looks for.
"""
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parent
BUILD = Path(os.environ.get("SEMCODEC_BUILD_DIR", "build"))
BUILD = BUILD if BUILD.is_absolute() else ROOT / BUILD
PACKAGE = BUILD / "python" / "semcodec"


def version() -> str:
    return re.search(r"project\(semcodec VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text()).group(1)


class BuildWithCMake(build_py):
    def run(self):
        if not (BUILD / "CMakeCache.txt").exists():
            subprocess.check_call(["cmake", "-S", str(ROOT), "-B", str(BUILD), "-G", "Ninja",
                                   "-DCMAKE_BUILD_TYPE=Release", f"-DPython3_EXECUTABLE={sys.executable}"])
        jobs = os.environ.get("SEMCODEC_JOBS")
        subprocess.check_call(["cmake", "--build", str(BUILD), "--target", "semcodec_python"]
                              + (["-j", jobs] if jobs else []))
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        if not (PACKAGE / f"_semcodec{suffix}").exists():
            built = sorted(p.name for p in PACKAGE.glob("_semcodec*"))
            sys.exit(f"setup.py: {BUILD} holds {built or 'no module'}, not _semcodec{suffix} for {sys.executable}; "
                     f"reconfigure it with -DPython3_EXECUTABLE={sys.executable} or use another SEMCODEC_BUILD_DIR")
        super().run()


class BinaryDistribution(Distribution):
    def has_ext_modules(self):  # a platform wheel: the package holds a compiled module
        return True


setup(
    version=version(),
    packages=["semcodec"],
    package_dir={"semcodec": os.path.relpath(PACKAGE, ROOT)},
    package_data={"semcodec": ["_semcodec*.so"]},
    cmdclass={"build_py": BuildWithCMake},
    distclass=BinaryDistribution,
    # setuptools' own scratch folders inside the CMake build, not in the source tree.
    options={"build": {"build_base": os.path.relpath(BUILD / "setuptools", ROOT)},
             "egg_info": {"egg_base": os.path.relpath(BUILD, ROOT)}},
)

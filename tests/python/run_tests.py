"""CTest's entry to the Python tests: pytest on the given files, or exit 77
(CTest's SKIP_RETURN_CODE for them) when pytest, numpy or the built module is
missing, so that a machine without them reports the tests as skipped, never as
passed; a module that is there but does not load fails. Arguments go to pytest."""
from __future__ import annotations

import sys

SKIP = 77


def main() -> int:
    for name, package in (("pytest", "python3-pytest"), ("numpy", "python3-numpy")):
        try:
            __import__(name)
        except ImportError:
            print(f"skipped: {name} is not installed for {sys.executable} (Debian: {package})")
            return SKIP
    try:
        import semcodec  # noqa: F401
    except ModuleNotFoundError as e:
        if e.name not in ("semcodec", "semcodec._semcodec"):
            raise
        print(f"skipped: the semcodec module is not built ({e}); build the semcodec_python target")
        return SKIP
    # Any other ImportError (an undefined symbol, a missing library) is a failure, not a skip.
    import pytest
    return int(pytest.main(["-p", "no:cacheprovider", *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())

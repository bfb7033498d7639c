"""The wheel's binary part. `npm run wheel` stages the single executable as build-bin/hq; the
wheel then installs it as `<prefix>/bin/hq` (next to the interpreter's other commands, as
upstream's wheel does) and is tagged for the platform it runs on. Without a staged executable the package stays pure
Python and finds `hq` through HQ_BIN or PATH."""
import os
import platform

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
STAGED = os.path.join("build-bin", "hq")

data_files = []
cmdclass = {}
if os.path.isfile(os.path.join(HERE, STAGED)):
    from wheel.bdist_wheel import bdist_wheel

    # Node 20, which the executable carries, needs glibc 2.28 or newer.
    PLATFORM = "manylinux_2_28_" + {"amd64": "x86_64", "arm64": "aarch64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )

    class PlatformWheel(bdist_wheel):
        """Any Python 3, this platform: the executable does not depend on the interpreter."""

        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            return "py3", "none", PLATFORM

    # Data, not a script: setuptools would read a script as Python source.
    data_files = [("bin", [STAGED])]
    cmdclass["bdist_wheel"] = PlatformWheel

setup(data_files=data_files, cmdclass=cmdclass)

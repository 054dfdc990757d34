"""Build glue: package layout (library in shared/, steps in steps/) and the native kernels in native/."""
from pybind11.setup_helpers import Pybind11Extension
from setuptools import find_packages, setup

packages = ["astroflow"] + [f"astroflow.{p}" for p in find_packages("shared/astroflow")]
packages += [p for p in find_packages(".") if p.startswith("steps")]

setup(
    packages=packages,
    package_dir={"astroflow": "shared/astroflow", "steps": "steps"},
    package_data={"steps": ["**/*.toml", "**/*.csv", "**/*.json"], "astroflow": ["**/*.html"]},
    ext_modules=[
        Pybind11Extension(
            "astroflow._modshift",
            sources=["native/modshift/bindings.cpp", "native/modshift/modshift.cpp"],
            include_dirs=["native/modshift"],
            cxx_std=17,
            extra_compile_args=["-O3"],
        ),
        Pybind11Extension("astroflow._filters", sources=["native/filters/filters.cpp"], cxx_std=17,
                          extra_compile_args=["-O3"]),
    ],
)

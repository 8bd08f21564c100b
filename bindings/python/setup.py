"""Packages the `reasonrt` Python package with its prebuilt extension (built by CMake:
scripts/build_wheel.sh). The wheel is platform-specific."""
from setuptools import setup
from setuptools.dist import Distribution


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(
    name="reasonrt",
    version="0.1.0",
    description="Embeddable runtime for DeepSeek-R1-family reasoning models",
    packages=["reasonrt"],
    package_data={"reasonrt": ["_reasonrt*.so", "*.pyi", "py.typed"]},
    install_requires=["numpy"],
    python_requires=">=3.9",
    distclass=BinaryDistribution,
    zip_safe=False,
)

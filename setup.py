"""rtmag: real-time, source-specific video magnification (DeepMag, Chen & McDuff 2020)."""

from setuptools import find_packages, setup

setup(
    name="rtmag",
    version="0.1.0.dev0",
    description="Real-time source-specific video magnification of pulse and breathing (DeepMag)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["rtmag", "rtmag.*"]) + ["rtmag.kernels"],
    package_dir={"rtmag.kernels": "kernels"},
    package_data={"rtmag": ["weights/*.pt", "weights/*.json"]},
    include_package_data=True,
    # torch is pinned by the install commands (README, .ci/run), not here: an
    # unpinned range would let pip pull a multi-GB CUDA build on CPU machines.
    install_requires=[
        "torch>=2.3",
        "numpy>=1.24",
        "scipy>=1.10",
        "opencv-python>=4.8,<5",
        "av>=12",
        "tqdm>=4.60",
    ],
    extras_require={
        "dev": ["pytest>=8", "ruff>=0.5", "matplotlib>=3.7", "aiohttp>=3.9"],
        "plot": ["matplotlib>=3.7"],
        "telehealth": ["aiohttp>=3.9"],  # examples/telehealth
        "onnx": ["onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.3"],
        "tensorrt": ["torch-tensorrt"],
        "triton": ["triton"],  # about 1 GB installed; CPU runs kernels only in its interpreter
    },
    entry_points={"console_scripts": ["rtmag=rtmag.cli:main"]},
)

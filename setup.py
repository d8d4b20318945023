"""Installs iuie (the library, its binaries and the ``iuie`` command) and seqio_tasks (the registrations).

The gin configs of ``gin/`` and the experiment configs of ``t5x_configs/`` ship inside the wheel as the
packages ``iuie.gin`` and ``iuie.t5x_configs`` so that gin ``include`` lines resolve after ``pip install``.
"""

import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent


def _data_packages(folder: str, package: str) -> dict[str, str]:
    """Maps every sub-folder of a config folder to a package name, so setuptools ships its files."""
    mapping = {package: folder}
    for sub in sorted(p for p in (HERE / folder).rglob("*") if p.is_dir() and p.name != "__pycache__"):
        rel = sub.relative_to(HERE / folder)
        mapping[".".join((package, *rel.parts))] = str(pathlib.Path(folder, rel))
    return mapping


CONFIG_PACKAGES = {**_data_packages("gin", "iuie.gin"), **_data_packages("t5x_configs", "iuie.t5x_configs")}

setuptools.setup(
    name="iuie",
    version="0.1.0",
    description="InstructUIE as a JAX system: instruction-tuned FlanT5 for NER, RE and EE with T5X and SeqIO",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["iuie", "iuie.*", "seqio_tasks", "seqio_tasks.*"])
    + list(CONFIG_PACKAGES),
    package_dir=CONFIG_PACKAGES,
    package_data={
        "iuie.pipeline": ["assets/*"],
        **{package: ["*.gin", "*.json"] for package in CONFIG_PACKAGES},
        "seqio_tasks": ["*.json"],
        "iuie.serving": ["static/*"],
    },
    install_requires=[
        "jax",
        "flax",
        "optax",
        "orbax-checkpoint",
        "seqio",
        "tensorflow-datasets",
        "numpy",
        "gin-config",
        "clu",
        "tensorboard",  # clu's metric writers import it
        "sentencepiece",
        "safetensors",
        "msgpack",
        "tensorstore",
    ],
    extras_require={
        # torch 2.13.0 is the CPU build this project's machines carry; transformers is the reference
        # implementation the model tests compare against. Neither is needed at run time.
        # libtpu (through jax[tpu]) lets ``iuie plan`` and its test compile for TPU topologies on a CPU machine.
        "test": [
            "pytest",
            "pytest-xdist",
            "hypothesis",
            "torch==2.13.0",
            "transformers",
            "ruff",
            "import-linter",
            "jax[tpu]",
            "httpx",
            "playwright",  # drives the system chromium (apt-get install chromium) in the page test
            "pillow",
            "fastapi",
            "uvicorn",
            "matplotlib",
        ],
        # `iuie serve` (FastAPI on uvicorn) and `iuie report` (matplotlib figures).
        "serve": ["fastapi", "uvicorn", "matplotlib"],
        # seqio's Apache Beam cache job (`iuie cache`, docs/scaling.md). Not in "test": apache-beam 2.77 pins
        # protobuf<7 while sentencepiece 0.2.3's generated code (imported by seqio) needs protobuf>=7.36, so a
        # joint resolve breaks seqio. Install it without its pins: pip install --no-deps apache-beam, then
        # its other requirements (the "beam-deps" list below), as CI must (.ci/run).
        "beam": ["apache-beam", "google-crc32c"],
        "beam-deps": [
            "google-crc32c",
            "httplib2",
            "fastavro",
            "fasteners",
            "jsonpickle",
            "objsize",
            "proto-plus",
            "pymongo",
            "zstandard",
            "beartype",
            "cryptography",
            "pytz",
            "sortedcontainers",
            "pillow",
        ],
        "gpu": ["jax[cuda12]"],
        "tpu": ["jax[tpu]"],
    },
    entry_points={"console_scripts": ["iuie=iuie.cli:main"]},
)

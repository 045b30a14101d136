"""The two datasets of the two-stage example (launch/two_stage.sh): two domains of this machine's standard library.

    data-prep run --config=configs/data/two_stage.py:general --config.output_dir=DATA/general
    data-prep run --config=configs/data/two_stage.py:gui --config.output_dir=DATA/gui \
        --config.tokenizer_model=DATA/general/tokenizer.model

general: library packages (networking, email, asyncio, XML, logging, ...), 2.6 MB of Python
3.11's; gui: the Tk GUI code (idlelib, tkinter, turtledemo), 1.2 MB. The second reuses the
first's tokenizer, so a model pretrained on one reads the other.
"""

import os
import sysconfig

import ml_collections

from configs.data import demo

FOLDERS = {
    "general": ("email", "asyncio", "json", "importlib", "http", "xml", "logging", "multiprocessing", "concurrent",
                "unittest", "urllib"),
    "gui": ("idlelib", "tkinter", "turtledemo"),
}


def get_config(domain: str = "general") -> ml_collections.ConfigDict:
    c = demo.get_config()  # the demo's curation, vocabulary, sequence length and shards
    stdlib = sysconfig.get_paths()["stdlib"]
    c.inputs = tuple(os.path.join(stdlib, folder) for folder in FOLDERS[domain])
    c.validation_fraction = 0.05
    return c

"""A tiny TFDS dataset of stdlib module docstrings, prepared offline by the TFDS reader tests.

TFDS registers builders by class definition and reads files beside them: the class must
live in an importable package.
"""

import tensorflow_datasets as tfds

DOCSTRINGS = ("json", "gzip", "csv")  # stdlib modules whose docstrings are the examples


class TinyText(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(
            {"content": tfds.features.Text(), "url": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for index, module in enumerate(DOCSTRINGS):
            url = f"https://docs.python.org/3/library/{module}.html"
            yield index, {"content": __import__(module).__doc__, "url": url}

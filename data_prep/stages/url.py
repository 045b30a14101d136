"""The url stage: drops blocked domains and URLs with banned substrings (data_prep/filters/url.py)."""

from __future__ import annotations

import dataclasses

import ml_collections

from data_prep.document import Document, Result
from data_prep.filters import UrlBlocklist
from data_prep.stage import DocumentStage, filter_verdict, loaded, register
from pretrain_common.errors import ConfigError


@register
@dataclasses.dataclass(frozen=True)
class Url(DocumentStage):
    name = "url"
    group = "url"
    domains_path: str | None
    substrings_path: str | None

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Url:
        stage = cls(config.url.domains_path, config.url.substrings_path)
        try:
            stage.blocklist()  # a missing file fails here, not in a worker
        except OSError as error:
            raise ConfigError(f"config.url: {error}") from error
        return stage

    @classmethod
    def files(cls, config: ml_collections.ConfigDict) -> list[str]:
        return [path for path in (config.url.domains_path, config.url.substrings_path) if path]

    def blocklist(self) -> UrlBlocklist:
        return loaded(UrlBlocklist.from_files, self.domains_path, self.substrings_path)

    def decide(self, doc: Document) -> Result:
        return filter_verdict(doc, self.blocklist()(doc.url))

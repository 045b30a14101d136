"""upsample: FineWeb-2 rehydration by duplicate-cluster size, and repeats or drops by classifier score,
through the mixture: each bucket its own component, weighted by copies x tokens, in both runners.

Real text. Cluster case: English Debian handbook pages (extracted text), each written as
1 to 6 identical files, one also as a copy with one word changed (so exact dedup and
then MinHash dedup build its cluster); the planted cluster sizes decide the buckets.
Score case: Language Reference topics and stdlib email sources, scored by a classifier
trained on other topics and other stdlib code (conftest.py: prose_model, prose_and_code).
What each bucket should hold is computed here from the planted sizes or the model's own scores,
and its tokens with the dataset's tokenizer, never read back from the stage.
"""

import collections
import os
import tarfile

import numpy as np
import pytest
import sentencepiece as spm

from configs.data import base
from data_prep import beam_runner, classifier, extract, prepare, readers, stages
from data_prep.sampling import TRAIN, split_of
from pretrain_common import records
from pretrain_common.errors import ConfigError

# Planted exact copies per handbook page (the cluster sizes); page 2 also gets a near copy: its size is 3.
COPIES = (1, 1, 2, 2, 3, 4, 5, 6) + (1,) * 12
NEAR_COPY_OF = 2
FINEWEB2 = {1: ("cluster_1", 1), 2: ("cluster_2", 2), 3: ("cluster_3-4", 3), 4: ("cluster_3-4", 3),
            5: ("cluster_5-99", 5), 6: ("cluster_5-99", 5)}  # size -> (bucket, copies), FineWeb-2's README
SCORE_COPIES = ((0.0, 0), (0.5, 1), (0.8, 2))
SOURCE_WEIGHTS = (("prose", 0.7), ("code", 0.3))
DIRECT_RUNNER = ["--runner=DirectRunner", "--prism_location=/nonexistent/prism"]


@pytest.fixture(scope="module")
def handbook(shared_corpora, tmp_path_factory):
    """The planted folder, and each page's text with its cluster size."""
    folder = tmp_path_factory.mktemp("handbook")
    pages = []
    with tarfile.open(shared_corpora / "debian-handbook-html.tar.xz", "r:xz") as tar:
        for member in sorted((m for m in tar.getmembers() if m.isfile() and "/en-US/sect." in m.name
                              and m.name.endswith(".html")), key=lambda m: m.name):
            text = extract.html_to_text(tar.extractfile(member).read().decode("utf-8"))
            if text and len(text.split()) >= 300:
                pages.append(text)
            if len(pages) == len(COPIES):
                break
    sizes = []
    for index, (text, copies) in enumerate(zip(pages, COPIES)):
        for copy in range(copies):
            (folder / f"p{index:02d}-{copy}.txt").write_text(text)
        sizes.append(copies)
    words = pages[NEAR_COPY_OF].split(" ")
    words[len(words) // 2] = "rewritten"
    (folder / f"p{NEAR_COPY_OF:02d}-near.txt").write_text(" ".join(words))
    sizes[NEAR_COPY_OF] += 1
    return folder, pages, sizes


def _config(case, handbook, prose_and_code, model, output_dir):
    config = base.get_config()
    config.update(dict(output_dir=str(output_dir), vocab_size=400, seq_len=64, validation_fraction=0.2,
                       num_train_shards=4, num_workers=1))
    if case == "cluster":  # FineWeb-2's table, the default; no source mixture
        config.update(dict(inputs=(f"handbook={handbook[0]}",), stages=("exact_dedup", "minhash_dedup", "upsample")))
    else:
        config.update(dict(inputs=tuple(prose_and_code), stages=("quality", "upsample")))
        config.classifier.update(dict(model=model, threshold=0.0))  # scores every document, keeps all
        config.upsample.update(dict(cluster_copies=(), score_copies=SCORE_COPIES))
        config.mixture.weights = SOURCE_WEIGHTS
    return config


@pytest.fixture(scope="module", params=["cluster", "score"])
def both_runs(request, handbook, prose_and_code, prose_model, tmp_path_factory):
    local_dir, beam_dir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("beam")
    local = prepare.prepare(_config(request.param, handbook, prose_and_code, prose_model, local_dir))
    beam_runner.run(_config(request.param, handbook, prose_and_code, prose_model, beam_dir), DIRECT_RUNNER)
    return request.param, local_dir, local, beam_dir


def _expected(case, handbook, prose_and_code, model):
    """(source, text, id, bucket, copies) of every document the upsample stage should keep or drop."""
    if case == "cluster":
        folder, pages, sizes = handbook
        return [("handbook", text, f"handbook/p{index:02d}-0.txt", *FINEWEB2[size])
                for index, (text, size) in enumerate(zip(pages, sizes))]
    scorer = classifier.QualityModel.load(model)
    found = []
    for spec in prose_and_code:
        name, path = spec.split("=")
        for doc in readers.read_files(name, *readers.list_files(path)):
            if not isinstance(doc, readers.Document):  # removed as read
                continue
            score = float(scorer.scores([doc.text])[0])
            bound, copies = [(b, c) for b, c in SCORE_COPIES if b <= score][-1]
            label = f"score_{bound}" + next((f"-{b}" for b, _ in SCORE_COPIES if b > bound), "+")
            found.append((name, doc.text, doc.id, label, copies))
    return found


def test_each_document_lands_in_its_bucket_and_zero_copies_remove(both_runs, handbook, prose_and_code,
                                                                   prose_model):
    case, _, report, _ = both_runs
    expected = _expected(case, handbook, prose_and_code, prose_model)
    stage = next(s for s in report["stages"] if s["stage"] == "upsample")
    assert stage["bucket_documents"] == dict(collections.Counter(label for *_, label, _ in expected))
    dropped = collections.Counter(f"upsample:zero_copies_{label}" for *_, label, copies in expected if not copies)
    assert stage["removed"] == dict(dropped)
    assert (case == "score") == bool(dropped)  # the score case drops its low bucket; cluster sizes drop nothing
    assert len({label for *_, label, _ in expected}) >= 3  # several buckets, each tested


def test_each_bucket_holds_its_documents_tokens_exactly_and_weighs_copies_times_tokens(
        both_runs, handbook, prose_and_code, prose_model, read_shard):
    case, folder, report, _ = both_runs
    metadata = records.read_metadata(str(folder))
    sp = spm.SentencePieceProcessor(model_file=str(folder / metadata.tokenizer))
    components = collections.defaultdict(lambda: [0, 0, 0])  # documents, tokens, copies
    for source, text, doc_id, label, copies in _expected(case, handbook, prose_and_code, prose_model):
        if copies and split_of(doc_id, 0.2, 0) == TRAIN:
            counts = components[f"{source}@{label}"]
            counts[0] += 1
            counts[1] += len(sp.encode(text)) + 1  # its separator
            counts[2] = copies
    mixed = metadata.mixture[TRAIN]
    assert set(mixed) == set(components)  # empty buckets are no component
    for name, (documents, tokens, copies) in components.items():
        assert (mixed[name].documents, mixed[name].tokens) == (documents, tokens), name
        rows = [row for shard in mixed[name].shards for row in read_shard(str(folder / shard))]
        assert sum(int(np.sum(row == metadata.eos_id)) for row in rows) == documents
        assert report["mixture"][TRAIN][name]["copies"] == copies
    source_weight = dict(SOURCE_WEIGHTS) if case == "score" else {"handbook": 1.0}
    mass = {name: copies * tokens for name, (_, tokens, copies) in components.items()}
    per_source = collections.Counter()
    for name, m in mass.items():
        per_source[name.split("@")[0]] += m
    for name, m in mass.items():
        source = name.split("@")[0]
        assert mixed[name].weight == pytest.approx(source_weight[source] * m / per_source[source], rel=1e-12)
    # Within a source, a bucket of c copies is seen c times as often per token as one of 1 copy.
    epochs = {name: report["mixture"][TRAIN][name]["epochs_per_1b_training_tokens"] for name in mixed}
    for a in mixed:
        for b in mixed:
            if a.split("@")[0] == b.split("@")[0]:
                assert epochs[a] / epochs[b] == pytest.approx(components[a][2] / components[b][2], rel=1e-12)


def test_validation_is_one_split_of_single_copies(both_runs):
    _, folder, report, _ = both_runs
    metadata = records.read_metadata(str(folder))
    assert set(metadata.splits) == {"train", "validation"} and "validation" not in metadata.mixture
    assert metadata.splits["validation"].documents == sum(c["kept"].get("validation", 0)
                                                          for c in report["sources"].values()) > 0


def test_both_runners_write_the_same_bytes(both_runs):
    _, local_dir, _, beam_dir = both_runs
    files = lambda folder: sorted(name for name in os.listdir(folder) if name != prepare.TIMINGS_FILE)
    assert files(beam_dir) == files(local_dir)
    for name in files(local_dir):
        assert (beam_dir / name).read_bytes() == (local_dir / name).read_bytes(), name


def test_exact_then_near_dedup_add_up_the_cluster_size(handbook, tmp_path):
    """The near copy joins a cluster exact dedup already made: its keeper stands for all three documents."""
    from data_prep.dedup import CLUSTER_SIZE, DedupConfig, deduplicate

    folder, _, _ = handbook
    docs = [doc for doc in readers.read_files("handbook", *readers.list_files(str(folder)))
            if f"p{NEAR_COPY_OF:02d}-" in doc.id]
    exact = deduplicate(docs, str(tmp_path), DedupConfig(exact=True, near=False, num_workers=1))
    kept = [d if d.id not in exact.cluster_sizes else
            type(d)(d.id, d.source, d.url, d.text, {CLUSTER_SIZE: exact.cluster_sizes[d.id]})
            for d in docs if d.id not in exact.removed]
    near = deduplicate(kept, str(tmp_path), DedupConfig(exact=False, near=True, num_workers=1))
    keeper = f"handbook/p{NEAR_COPY_OF:02d}-0.txt"
    assert exact.cluster_sizes == {keeper: 2} and near.cluster_sizes == {keeper: 3}


@pytest.mark.parametrize("stages_, group, error", [
    (("upsample",), {}, "needs exact_dedup or minhash_dedup before upsample"),
    (("exact_dedup", "upsample"), {"score_copies": ((0.0, 1),)}, "needs the quality stage before upsample"),
    (("exact_dedup", "upsample"), {"cluster_copies": ((2, 1),)}, "bounds ascending from 1"),
    (("exact_dedup", "upsample"), {"cluster_copies": ((1, 1), (1, 2))}, "bounds ascending from 1"),
    (("exact_dedup", "upsample"), {"cluster_copies": ((1, 1), (2.5, 2))}, "whole numbers"),
    (("exact_dedup", "upsample"), {"cluster_copies": ((1, -1),)}, "copies >= 0"),
    (("exact_dedup", "upsample"), {"cluster_copies": (1, 2)}, "config.upsample.cluster_copies=\\(1, 2\\)"),
    (("exact_dedup", "upsample"), {"cluster_copies": ()}, "needs config.upsample.cluster_copies or score_copies"),
])
def test_a_bad_table_or_order_is_one_line_naming_the_key(stages_, group, error):
    config = base.get_config()
    config.stages = stages_
    config.upsample.update(group)
    with pytest.raises(ConfigError, match=error) as raised:
        stages.check(config)
    assert "\n" not in str(raised.value)


def test_without_the_stage_a_mixture_is_unchanged():
    """No upsample stage: no buckets, the weights as configured (the datasets prepared before stay the same)."""
    config = base.get_config()
    config.mixture.weights = SOURCE_WEIGHTS
    mix = prepare.mixture_of(config, ["prose", "code"])
    assert mix.copies == {} and mix.weights({"prose": 10, "code": 990}) == {"prose": 0.7, "code": 0.3}
    assert prepare.mixture_of(base.get_config(), ["prose"]) is None

"""The 19 HEAR 2021 tasks as released, each fact traced to where it was published.

Sources (cited per field below by their letter):

[P] hearbenchmark/hear-preprocess at tag v2021.1.1 (commit 610d864; v2021.1.0 is "the
    version used for HEAR 2021 NeurIPS evaluations", 2021.1.1 only renames URLs): the
    ``generic_task_config`` of ``hearpreprocess/<task>.py`` (open tasks) or
    ``hearpreprocess/secrettasks/hearsecrettasks/<task>.py`` (secret tasks). A released
    folder is named ``<task_name>-<version>-<mode>`` (``hearpreprocess/util/luigi.py``,
    ``versioned_task_name``); its ``task_metadata.json`` is that config.
[W] hearbenchmark/hearbenchmark.com ``docs/_data/hear-tasks.yml``, the table of "the 19
    evaluation tasks" (clips, clip duration, split method, headline metric), and
    ``docs/_layouts/hear2021-datasets.html`` (task descriptions; the Zenodo mirror,
    record 5887964, holds every task "but only at 48000Hz"; 16000/22050/32000/44100 are
    "requester pays" in gs://hear2021-archive/tasks/ and s3://hear2021-archive/tasks/).
[K] hearbenchmark/hear-eval-kit ``README.md`` (Zenodo, concept DOI 10.5281/zenodo.5885750,
    48 kHz only) and ``heareval_evaluation_example.ipynb`` (archives are named
    ``hear2021-<folder>-<rate>.tar.gz`` and hold ``tasks/<folder>/``).
[R] hearbenchmark.com results tables (``docs/_includes/html_result_tables/<folder>.html``,
    commits 84663a9 and 94b5a25): the released folder names; the Beehive score on the
    leaderboard is the mean of its two folds (e.g. UDONS AUCROC 0.776 and 0.980 -> 0.878).
[D] The domain is read from the task's description in [W]; HEAR publishes no per-task
    domain field, so an ambiguous one is None.

Sources of the sizes a synthetic copy needs (``SizedFacts``, used by ``hear_2021.sized``):

[T] The TensorFlow Datasets catalogue page of ``speech_commands``: split examples test
    4,890, train 85,511, validation 10,102 (their sum is [W]'s 100,503; [P]'s
    speech_commands.py cuts its silence clips "the same method used in the TensorFlow
    dataset generator").
[F] Fonseca et al., "FSD50K: an Open Dataset of Human-Labeled Sound Events", arXiv
    2010.00475: 51,197 clips in 200 classes, dev 40,966 (train 36,796, val 4,170) and eval
    10,231; 0.3-30 s long; 108.3 hours in all.
[M] Hawthorne et al., "Enabling Factorized Piano Music Modeling and Generation with the
    MAESTRO Dataset", arXiv 1810.12247: 172.3 hours and 6.18 million notes (v1.0.0), on a
    piano's 88 keys (MIDI 21-108).
[E] The DCASE 2016 task 2 page (dcase.community/challenge2016/task-sound-event-detection-
    in-synthetic-audio): 11 office sound classes, synthetic mixtures of 2 minutes "in
    multiple SNR and event density conditions" (the density is not given as a number).
Where a count is not published per split (most k-fold tasks publish only their total),
it is derived, and ``SizedFacts.derived`` says how.

Not verifiable here: the file list, checksums and sizes of Zenodo record 5887964 itself.
Archive names follow [K]'s pattern; third-party download scripts list the same names for
14 of the 20 archives in the later Zenodo version 6332517 (not for nsynth_pitch 5h,
speech_commands 5h, gunshot_triangulation, tfds_gtzan_music_speech, maestro and
vox_lingua_top10). Checksums and archive sizes are therefore None.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

# [W] "Zenodo mirror" link; [K] names the concept DOI 10.5281/zenodo.5885750 (all
# versions) instead. Third-party scripts use version 6332517 ("HEAR 2021.3"); unverified.
ZENODO_RECORD = "5887964"
RELEASED_RATE = 48000  # [W], [K]: the only rate on Zenodo
SUITE = "hear2021"


class Archive(BaseModel):
    """One released tarball: where it is, and what it must hash to when that is known."""

    model_config = ConfigDict(frozen=True)

    folder: str  # the task folder inside, under tasks/ (or hear-<version>/tasks/)
    file: str
    url: str
    md5: str | None
    sha256: str | None
    size: int | None  # bytes


class SizedFacts(BaseModel):
    """What a synthetic copy of the task at its released size needs beyond its metadata."""

    model_config = ConfigDict(frozen=True)

    split_clips: dict[str, int]  # clips per split (train/valid/test) or fold (fold00...)
    derived: str | None = None  # how split_clips was derived, where not published as such
    vocab_size: int
    labels: tuple[str, ...] | None = None  # the released label names, where published
    duration_range: tuple[float, float] | None = None  # seconds; clips of their own length
    mean_duration: float | None = None  # seconds; clips of their own length
    events_per_minute: float | None = None  # event tasks: the labelled events' density
    event_seconds: tuple[float, float] | None = None  # event tasks: typical event length


_EVEN = "the published total split evenly over the folds (the first folds take the rest)"


def _even(total: int, nfolds: int) -> dict[str, int]:
    """``total`` clips over ``nfolds`` folds as evenly as possible, fold00 first."""
    share, rest = divmod(total, nfolds)
    return {f"fold{i:02d}": share + (i < rest) for i in range(nfolds)}


_PIANO_PITCHES = tuple(str(pitch) for pitch in range(21, 109))  # MIDI 21-108: 88 labels
_SPEECH_COMMANDS_LABELS = (
    "down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes",
    "_silence_", "_unknown_",
)  # fmt: skip
_DCASE_LABELS = (
    "clearthroat", "cough", "doorslam", "drawer", "keyboard", "keys", "knock", "laughter",
    "pageturn", "phone", "speech",
)  # fmt: skip


class CatalogueTask(BaseModel):
    """A HEAR 2021 task as released: names, task_metadata facts, size and archive(s)."""

    model_config = ConfigDict(frozen=True)

    name: str  # the name users type: task_name, plus the mode where a task has two
    title: str  # as on hearbenchmark.com
    folder: str  # released folder name (the first archive's)
    task_name: str
    version: str
    mode: str
    embedding_type: Literal["scene", "event"]
    prediction_type: Literal["multiclass", "multilabel"]
    split_mode: Literal["trainvaltest", "new_split_kfold", "presplit_kfold"]
    nfolds: int | None  # None for trainvaltest
    evaluation: tuple[str, ...]  # the first drives model selection, as in heareval
    sample_duration: float | None  # seconds; None where clips keep their own length
    domain: Literal["speech", "environment", "music"] | None
    clips: int | None  # all splits together
    archives: tuple[Archive, ...]
    # task_metadata.json keys beyond the ones above that [P]'s config sets (evaluation_params)
    extra_metadata: dict[str, Any] = {}
    sized: SizedFacts | None = None  # every catalogued task has them; None outside it


def _zenodo(folder: str) -> Archive:
    """The 48 kHz archive of ``folder`` in the Zenodo record, named as [K] shows."""
    file = f"hear2021-{folder}-{RELEASED_RATE}.tar.gz"
    return Archive(
        folder=folder,
        file=file,
        url=f"https://zenodo.org/records/{ZENODO_RECORD}/files/{file}?download=1",
        md5=None,  # not verifiable here (see the module docstring)
        sha256=None,  # Zenodo publishes md5 only
        size=None,  # not verifiable here
    )


# [P] nsynth_pitch.py; no other task's config sets keys beyond CatalogueTask's but maestro
# (below). dcase2016_task2 sets no evaluation_params: heareval's default grid applies ([W]:
# "250 ms median filtering ... a minimum event duration of 125 or 250 ms").
_NSYNTH_EXTRA: dict[str, Any] = {"pitch_range_min": 21, "pitch_range_max": 108}

_TOP1 = ("top1_acc", "mAP", "d_prime", "aucroc")

CATALOGUE: tuple[CatalogueTask, ...] = (
    # --- open tasks: [P] hearpreprocess/<task>.py ---
    CatalogueTask(
        name="dcase2016_task2",
        title="DCASE 2016 Task 2",
        folder="dcase2016_task2-hear2021-full",  # [P] default_mode full; [R]
        task_name="dcase2016_task2",
        version="hear2021",  # [P] "we repartition, we use our own version number"
        mode="full",
        embedding_type="event",  # [P]; [W] T
        prediction_type="multilabel",  # [P]; [W] L
        split_mode="trainvaltest",  # [P]; [W] TVT
        nfolds=None,
        evaluation=("event_onset_200ms_fms", "segment_1s_er"),  # [P]; [W] Onset FMS
        sample_duration=120.0,  # [P]; [W]
        domain="environment",  # [D] office sound events
        clips=72,  # [W]
        archives=(_zenodo("dcase2016_task2-hear2021-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            # [P] full mode: split_percentage 60/20/20 of the 72 [W] mixtures, n_valid =
            # n_test = round(72 * 0.2) = 14 (pipeline.py), one split key per file.
            split_clips={"train": 44, "valid": 14, "test": 14},
            derived="valid and test as hear-preprocess rounds 20% of 72; train the rest",
            vocab_size=11,  # [E]
            labels=_DCASE_LABELS,  # [E]'s 11 classes; these short names are unverified
            # [E] gives density only as "conditions"; derived: 1-3 events of each of the 11
            # classes per 2-minute mixture, about 11 a minute, of isolated office sounds
            # lasting 0.5-4 s (a door slam to a phone ringing).
            events_per_minute=11.0,
            event_seconds=(0.5, 4.0),
        ),
    ),
    CatalogueTask(
        name="nsynth_pitch_5h",
        title="NSynth Pitch 5hr",
        folder="nsynth_pitch-v2.2.3-5h",  # [P] mode 5h; [R]
        task_name="nsynth_pitch",
        version="v2.2.3",
        mode="5h",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="trainvaltest",  # [P]; [W] TVT
        nfolds=None,
        evaluation=("pitch_acc", "chroma_acc"),  # [P]; [W] Pitch Acc.
        sample_duration=4.0,  # [P]; [W]
        domain="music",  # [D] instrumental sounds
        clips=5000,  # [W]
        archives=(_zenodo("nsynth_pitch-v2.2.3-5h"),),
        extra_metadata=_NSYNTH_EXTRA,
        sized=SizedFacts(
            # [P] 5h mode caps train/valid/test at 3600*5*(80|10|10)/90 s of 4 s clips:
            # int() gives 4000/500/500, summing to [W]'s 5000.
            split_clips={"train": 4000, "valid": 500, "test": 500},
            vocab_size=88,  # [P] pitch_range_min 21 .. pitch_range_max 108
            labels=_PIANO_PITCHES,
        ),
    ),
    CatalogueTask(
        name="nsynth_pitch_50h",
        title="NSynth Pitch 50hr",
        folder="nsynth_pitch-v2.2.3-50h",  # [P] mode 50h; [R]
        task_name="nsynth_pitch",
        version="v2.2.3",
        mode="50h",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        nfolds=None,
        evaluation=("pitch_acc", "chroma_acc"),  # [P]
        sample_duration=4.0,  # [P]; [W]
        domain="music",  # [D]
        clips=49060,  # [W]
        archives=(_zenodo("nsynth_pitch-v2.2.3-50h"),),
        extra_metadata=_NSYNTH_EXTRA,
        sized=SizedFacts(
            # [P] 50h caps: train 40000, valid 5000 clips of 4 s; NSynth's test set is under
            # its cap, so test is [W]'s 49060 minus those (4060).
            split_clips={"train": 40000, "valid": 5000, "test": 4060},
            derived="test is the published total minus the capped train and valid",
            vocab_size=88,  # [P]
            labels=_PIANO_PITCHES,
        ),
    ),
    CatalogueTask(
        name="speech_commands_5h",
        title="Speech Commands 5hr",
        folder="speech_commands-v0.0.2-5h",  # [P] mode 5h; [R]
        task_name="speech_commands",
        version="v0.0.2",
        mode="5h",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="trainvaltest",  # [P]; [W] TVT
        nfolds=None,
        evaluation=("top1_acc",),  # [P]; [W] Accuracy
        sample_duration=1.0,  # [P]; [W]
        domain="speech",  # [D] spoken commands
        clips=22890,  # [W]
        archives=(_zenodo("speech_commands-v0.0.2-5h"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            # [P] 5h mode caps train/valid at 3600*5*(80|10)/90 s of 1 s clips (16000,
            # 2000) and keeps the whole test set, [T] 4890; the sum is [W]'s 22890.
            split_clips={"train": 16000, "valid": 2000, "test": 4890},
            vocab_size=12,  # [P] 10 WORDS, _silence_, _unknown_
            labels=_SPEECH_COMMANDS_LABELS,
        ),
    ),
    CatalogueTask(
        name="speech_commands_full",
        title="Speech Commands Full",
        folder="speech_commands-v0.0.2-full",  # [P] mode full; [R]
        task_name="speech_commands",
        version="v0.0.2",
        mode="full",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        nfolds=None,
        evaluation=("top1_acc",),  # [P]
        sample_duration=1.0,  # [P]; [W]
        domain="speech",  # [D]
        clips=100503,  # [W]
        archives=(_zenodo("speech_commands-v0.0.2-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            split_clips={"train": 85511, "valid": 10102, "test": 4890},  # [T]; sum = [W]
            vocab_size=12,  # [P]
            labels=_SPEECH_COMMANDS_LABELS,
        ),
    ),
    # --- secret tasks: [P] hearpreprocess/secrettasks/hearsecrettasks/<task>.py ---
    CatalogueTask(
        # [R] HEAR 2021 scores Beehive as the mean of two folds (train on one hive, test
        # on the other): beehive_states_fold0 and _fold1, identical configs but task_name.
        name="beehive_states",
        title="Beehive States",
        folder="beehive_states_fold0-v2-full",  # [P] modes 5h and full; [W] 600 s = full
        task_name="beehive_states_fold0",
        version="v2",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="trainvaltest",  # [P]; [W] TVT
        nfolds=None,
        evaluation=("aucroc", "mAP", "d_prime", "top1_acc"),  # [P]; [W] AUCROC
        sample_duration=600.0,  # [P] 60 * 10 in mode full; [W] 600.0
        domain="environment",  # [D] beehive recordings
        clips=576,  # [W], per fold
        archives=(
            # md5 f9e045f9... / 8bced7ce... appear in a third-party script for record
            # 6332517; not verified against Zenodo, so not enforced.
            _zenodo("beehive_states_fold0-v2-full"),
            _zenodo("beehive_states_fold1-v2-full"),
        ),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            # Derived: [P] trains on one hive and tests on the other, sampling valid from
            # the training hive at 10/(80+10) (pipeline.py); the hives' sizes are not
            # published, so each is taken as half of [W]'s 576.
            split_clips={"train": 256, "valid": 32, "test": 288},
            derived="each hive taken as half of the 576 clips; valid 1/9 of the train hive",
            vocab_size=2,  # [W] queen-less or normal
        ),
    ),
    CatalogueTask(
        name="beijing_opera",
        title="Beijing Opera Percussion",
        folder="beijing_opera-v1.0-hear2021-full",  # [P]; [R]
        task_name="beijing_opera",
        version="v1.0-hear2021",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="new_split_kfold",  # [P]
        nfolds=5,  # [P]; [W] 5-fold
        evaluation=_TOP1,  # [P]; [W] Accuracy
        sample_duration=4.77,  # [P]; [W]
        domain="music",  # [D] percussion instruments
        clips=236,  # [W]
        archives=(_zenodo("beijing_opera-v1.0-hear2021-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            split_clips=_even(236, 5),
            derived=_EVEN,
            vocab_size=4,
            labels=("bangu", "daluo", "naobo", "xiaoluo"),  # [W] "four main categories"
        ),
    ),
    CatalogueTask(
        name="tfds_crema_d",
        title="CREMA-D",
        folder="tfds_crema_d-1.0.0-full",  # [P]; [R]
        task_name="tfds_crema_d",
        version="1.0.0",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="new_split_kfold",  # [P]
        nfolds=5,  # [P]; [W] 5-fold
        evaluation=_TOP1,  # [P]; [W] Accuracy
        sample_duration=5.0,  # [P]; [W]
        domain="speech",  # [D] emotion in recited sentences
        clips=7438,  # [W]
        archives=(_zenodo("tfds_crema_d-1.0.0-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            split_clips=_even(7438, 5),
            derived=_EVEN,
            vocab_size=6,  # [W] six emotions
        ),
    ),
    CatalogueTask(
        name="esc50",
        title="ESC-50",
        folder="esc50-v2.0.0-full",  # [P]; [R]
        task_name="esc50",
        version="v2.0.0",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="presplit_kfold",  # [P] the dataset's own folds
        nfolds=5,  # [P]; [W] 5-fold
        evaluation=_TOP1,  # [P]; [W] Accuracy
        sample_duration=5.0,  # [P]; [W]
        domain="environment",  # [D] environmental sounds
        clips=2000,  # [W]
        archives=(_zenodo("esc50-v2.0.0-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            # [W] 2000 clips in ESC-50's own 5 folds of 400 each, so "even" is exact here.
            split_clips=_even(2000, 5),
            vocab_size=50,  # [W] 50 classes
        ),
    ),
    CatalogueTask(
        name="fsd50k",
        title="FSD50K",
        folder="fsd50k-v1.0-full",  # [P]; [R]
        task_name="fsd50k",
        version="v1.0",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multilabel",  # [P]; [W] L
        split_mode="trainvaltest",  # [P]; [W] TVT
        nfolds=None,
        evaluation=("mAP", "d_prime", "aucroc", "top1_acc"),  # [P]; [W] mAP
        sample_duration=None,  # [P] None: clips keep their length; [W] 0.3-30.0 s
        domain="environment",  # [D] Freesound events (also some speech and music)
        clips=51185,  # [W]
        archives=(_zenodo("fsd50k-v1.0-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            # [F] train 36796, val 4170, eval 10231 (51197); [W] publishes 51185, 12 fewer,
            # taken from train.
            split_clips={"train": 36784, "valid": 4170, "test": 10231},
            derived="[F]'s splits, with the 12 clips [W] lacks taken from train",
            vocab_size=200,  # [F]
            duration_range=(0.3, 30.0),  # [F]; [W]
            mean_duration=7.6,  # [F] 108.3 h over 51197 clips
        ),
    ),
    CatalogueTask(
        name="gunshot_triangulation",
        title="Gunshot Triangulation",
        folder="gunshot_triangulation-v1.0-full",  # [P]; [R]
        task_name="gunshot_triangulation",
        version="v1.0",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="new_split_kfold",  # [P]
        nfolds=7,  # [P] one fold per firearm; [W] 7-fold
        evaluation=_TOP1,  # [P]; [W] Accuracy
        sample_duration=1.5,  # [P]; [W]
        domain="environment",  # [D] gunshots in an open field
        clips=88,  # [W]
        archives=(_zenodo("gunshot_triangulation-v1.0-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            # [P] one fold per firearm; the firearms' shares are not published.
            split_clips=_even(88, 7),
            derived=_EVEN,
            vocab_size=4,  # [P] "the micId ... one of mic1-mic4"; [W] four iPod Touches
            labels=("mic1", "mic2", "mic3", "mic4"),  # [P]
        ),
    ),
    CatalogueTask(
        name="tfds_gtzan",
        title="GTZAN Genre",
        folder="tfds_gtzan-1.0.0-full",  # [P]; [R]
        task_name="tfds_gtzan",
        version="1.0.0",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="new_split_kfold",  # [P]
        nfolds=10,  # [P]; [W] 10-fold
        evaluation=_TOP1,  # [P]; [W] Accuracy
        sample_duration=30.0,  # [P]; [W]
        domain="music",  # [D] music genres
        clips=1000,  # [W]
        archives=(_zenodo("tfds_gtzan-1.0.0-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            split_clips=_even(1000, 10),
            derived=_EVEN,
            vocab_size=10,  # [W] 10 genres
        ),
    ),
    CatalogueTask(
        name="tfds_gtzan_music_speech",
        title="GTZAN Music Speech",
        folder="tfds_gtzan_music_speech-1.0.0-full",  # [P]; [R]
        task_name="tfds_gtzan_music_speech",
        version="1.0.0",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="new_split_kfold",  # [P]
        nfolds=10,  # [P]; [W] 10-fold
        evaluation=_TOP1,  # [P]; [W] Accuracy
        sample_duration=30.0,  # [P]; [W]
        domain=None,  # [D] music versus speech: both domains, none published
        clips=128,  # [W] table (its description says 120 tracks; the table is the count)
        archives=(_zenodo("tfds_gtzan_music_speech-1.0.0-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            split_clips=_even(128, 10),
            derived=_EVEN,
            vocab_size=2,  # [W]
            labels=("music", "speech"),  # [W]
        ),
    ),
    CatalogueTask(
        name="libricount",
        title="LibriCount",
        folder="libricount-v1.0.0-hear2021-full",  # [P]; [R]
        task_name="libricount",
        version="v1.0.0-hear2021",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="new_split_kfold",  # [P]
        nfolds=5,  # [P]; [W] 5-fold
        evaluation=_TOP1,  # [P]; [W] Accuracy
        sample_duration=5.0,  # [P]; [W]
        domain="speech",  # [D] speaker count
        clips=5720,  # [W]
        archives=(_zenodo("libricount-v1.0.0-hear2021-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            split_clips=_even(5720, 5),
            derived=_EVEN,
            vocab_size=11,  # [W] 0-10 speakers
            labels=tuple(str(n) for n in range(11)),
        ),
    ),
    CatalogueTask(
        name="maestro",
        title="MAESTRO 5hr",
        folder="maestro-v3.0.0-5h",  # [P] default_mode 5h (no full mode); [R]
        task_name="maestro",
        version="v3.0.0",
        mode="5h",
        embedding_type="event",  # [P]; [W] T
        prediction_type="multilabel",  # [P]; [W] L
        split_mode="new_split_kfold",  # [P]
        nfolds=5,  # [P]; [W] 5-fold
        evaluation=("event_onset_50ms_fms", "event_onset_offset_50ms_20perc_fms"),  # [P]
        sample_duration=120.0,  # [P]; [W]
        domain="music",  # [D] piano transcription
        clips=185,  # [W]
        archives=(_zenodo("maestro-v3.0.0-5h"),),
        extra_metadata={  # [P], as written there
            "use_scoring_for_early_stopping": False,
            "evaluation_params": {
                "event_postprocessing_grid": {"median_filter_ms": [150], "min_duration": [50]},
                "task_specific_param_grid": {"max_epochs": [50], "check_val_every_n_epoch": [1]},
            },
        },
        sized=SizedFacts(
            # [P] 5h: max_task_duration_by_fold 3600*5/4 s of 120 s clips, int() = 37 a
            # fold; 5 folds = [W]'s 185.
            split_clips=_even(185, 5),
            vocab_size=88,  # [M] the piano's 88 keys, MIDI 21-108
            labels=_PIANO_PITCHES,
            # [M] v1.0.0: 6.18 M notes in 172.3 h, about 600 a minute. Note lengths are not
            # published; derived: 0.1-1 s (after [P]'s sustain-pedal extension).
            events_per_minute=600.0,
            event_seconds=(0.1, 1.0),
        ),
    ),
    CatalogueTask(
        name="mridangam_stroke",
        title="Mridangam Stroke",
        folder="mridangam_stroke-v1.5-full",  # [P]; [R]
        task_name="mridangam_stroke",
        version="v1.5",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="new_split_kfold",  # [P]
        nfolds=5,  # [P]; [W] 5-fold
        evaluation=_TOP1,  # [P]; [W] Accuracy
        sample_duration=0.81,  # [P]; [W]
        domain="music",  # [D] carnatic percussion
        clips=6977,  # [W]
        archives=(_zenodo("mridangam_stroke-v1.5-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            split_clips=_even(6977, 5),
            derived=_EVEN,
            vocab_size=10,  # [W] 10 strokes
        ),
    ),
    CatalogueTask(
        name="mridangam_tonic",
        title="Mridangam Tonic",
        folder="mridangam_tonic-v1.5-full",  # [P] mridangam_stroke's config renamed; [R]
        task_name="mridangam_tonic",
        version="v1.5",
        mode="full",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="new_split_kfold",
        nfolds=5,  # [P]; [W] 5-fold
        evaluation=_TOP1,  # [P]; [W] Accuracy
        sample_duration=0.81,  # [P]; [W]
        domain="music",  # [D]
        clips=6977,  # [W]
        archives=(_zenodo("mridangam_tonic-v1.5-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            split_clips=_even(6977, 5),
            derived=_EVEN,
            vocab_size=6,  # [W] 6 tonics
        ),
    ),
    CatalogueTask(
        name="vocal_imitation",
        title="Vocal Imitations",
        folder="vocal_imitation-v1.1.3-full",  # [P]; [R]
        task_name="vocal_imitation",
        version="v1.1.3",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="new_split_kfold",  # [P]
        nfolds=3,  # [P]; [W] 3-fold
        evaluation=("mAP", "d_prime", "aucroc", "top1_acc"),  # [P]; [W] mAP
        sample_duration=11.26,  # [P]; [W]
        domain=None,  # [D] voices imitating non-speech sounds: none published
        clips=5601,  # [W]
        archives=(_zenodo("vocal_imitation-v1.1.3-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            # [W] "5601 vocal imitations of 302 reference sounds"
            split_clips=_even(5601, 3),
            derived=_EVEN,
            vocab_size=302,
        ),
    ),
    CatalogueTask(
        name="vox_lingua_top10",
        title="VoxLingua107 Top10",
        folder="vox_lingua_top10-hear2021-full",  # [P]; [R]
        task_name="vox_lingua_top10",
        version="hear2021",
        mode="full",
        embedding_type="scene",  # [P]; [W] S
        prediction_type="multiclass",  # [P]; [W] C
        split_mode="new_split_kfold",  # [P]
        nfolds=5,  # [P]; [W] 5-fold
        evaluation=_TOP1,  # [P]; [W] Accuracy
        sample_duration=18.64,  # [P]; [W]
        domain="speech",  # [D] spoken language identification
        clips=972,  # [W]
        archives=(_zenodo("vox_lingua_top10-hear2021-full"),),
        extra_metadata={},  # [P] sets no other task_metadata key
        sized=SizedFacts(
            split_clips=_even(972, 5),
            derived=_EVEN,
            vocab_size=10,  # [W] 10 languages
        ),
    ),
)


def by_name() -> dict[str, CatalogueTask]:
    """Tasks by catalogue name and by every released folder name they hold."""
    index: dict[str, CatalogueTask] = {}
    for task in CATALOGUE:
        index[task.name] = task
        for archive in task.archives:
            index[archive.folder] = task
    return index

"""Submission packs: `hear submit pack|check` and `hear leaderboard add` on a real run of
numpy_logmel, and on constructed records under released HEAR folder names."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_leaderboard import hear
from test_stats import record_with_predictions, scene_fold

from hear_runner.results.pack import INDEX, build_pack, sha256, write_pack, zip_bytes
from hear_runner.results.pack_check import PackRefused, check_pack, extract_pack
from hear_runner.results.reader import read_results
from hear_runner.site import write_site

ESC50 = "esc50-v2.0.0-full"  # a released folder, released as version v2.0.0


@pytest.fixture(scope="module")
def results(tasks_dir: Path, digits_task: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """numpy_logmel on the spoken digits, two probe seeds, as `hear run` writes it."""
    root = tmp_path_factory.mktemp("submit")
    done = hear(
        "run", "--model-module", "numpy_logmel", "--tasks-dir", str(tasks_dir),
        "--task", digits_task.name, "--results-dir", str(root / "results"), "--probe", "linear",
        "--seeds", "2", "--cache-dir", str(root / "cache"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root / "results"


@pytest.fixture(scope="module")
def pack(results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pack") / "numpy_logmel.hear.zip"
    done = hear("submit", "pack", "--results-dir", str(results), "--model", "numpy_logmel",
                "-o", str(path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return path


def members(pack: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(pack) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewritten(pack: Path, out: Path, changes: dict[str, bytes], update_sha: bool = True) -> Path:
    """A copy of ``pack`` with ``changes`` (path -> new bytes), pack.json's sha256 of each
    changed file updated too unless told not to."""
    files = members(pack) | changes
    index = json.loads(files[INDEX])
    if update_sha:
        for entry in index["entries"]:
            for packed in [entry["record"], entry["predictions"], entry["heareval_scores"],
                           *entry["manifests"]]:  # fmt: skip
                if packed and packed["path"] in changes:
                    packed["sha256"] = sha256(changes[packed["path"]])
    files[INDEX] = json.dumps(index, indent=2).encode()
    out.write_bytes(zip_bytes(files))
    return out


def record_path(pack: Path) -> str:
    return json.loads(members(pack)[INDEX])["entries"][0]["record"]["path"]


def refusal(done: object) -> str:
    """The one line a refused command printed (and that it failed)."""
    assert done.returncode != 0  # type: ignore[attr-defined]
    lines = done.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, done.stderr  # type: ignore[attr-defined]
    return " ".join(lines[0].split())


def make_site(root: Path, content_hash: str = "0") -> Path:
    """A leaderboard site as `hear leaderboard --format site` writes one, of another model
    ("theirs") on a released task whose preparation has ``content_hash``."""
    synthetic(root / "theirs", "theirs", ESC50, "v2.0.0", 0.5, content_hash=content_hash)
    write_site(root / "site", root / "theirs")
    return root / "site"


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def synthetic(results: Path, model: str, task: str, version: str, accuracy: float,
              score: float | None = None, content_hash: str = "0") -> None:  # fmt: skip
    record = record_with_predictions(model, task, [scene_fold(accuracy, 40)], score=score)
    record.task.version, record.task.content_hash = version, content_hash
    record.write(results)


# -- pack and check ---------------------------------------------------------------------------


def test_pack_holds_the_record_its_files_and_checks(pack: Path, results: Path,
                                                    digits_task: Path) -> None:  # fmt: skip
    task = digits_task.name
    names = set(members(pack))
    manifests = {f"records/manifests/{p.name}" for p in (results / "manifests").glob("*.json")}
    assert len(manifests) == 1
    assert (
        names
        == {
            INDEX,
            f"records/numpy_logmel/{task}.json",
            f"records/numpy_logmel/{task}.predictions.npz",
            f"records/numpy_logmel/{task}/test.predicted-scores.json",
        }
        | manifests
    )
    index = json.loads(members(pack)[INDEX])
    assert index["schema"] == "hear-submission" and index["version"] == 1
    assert index["model"] == "numpy_logmel" and [e["task"] for e in index["entries"]] == [task]
    assert (
        members(pack)[f"records/numpy_logmel/{task}.json"]
        == (results / "numpy_logmel" / f"{task}.json").read_bytes()
    )
    done = hear("submit", "check", str(pack))
    assert done.returncode == 0, done.stderr
    checked = check_pack(pack)
    record = checked.records[task]
    assert len(record.folds) == 2 and {f.seed for f in record.folds} == {42, 43}


def test_the_extracted_pack_reads_as_a_results_folder(pack: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(pack) as archive:
        archive.extractall(tmp_path)
    found = read_results(tmp_path / "records")
    assert found.models() == ["numpy_logmel"] and not found.notes
    labels, folds = found.records()[0].predictions()
    assert len(folds) == 2 and labels


def test_packing_twice_gives_the_same_bytes(pack: Path, results: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.hear.zip"
    done = hear("submit", "pack", "--results-dir", str(results), "--model", "numpy_logmel",
                "-o", str(again))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert again.read_bytes() == pack.read_bytes()


def test_a_model_not_in_the_folder_is_named_with_those_there(results: Path) -> None:
    done = hear("submit", "pack", "--results-dir", str(results), "--model", "nobody")
    line = refusal(done)
    assert "'nobody'" in line and "models there: numpy_logmel" in line


def test_a_record_without_predictions_is_refused(tmp_path: Path) -> None:
    record = record_with_predictions("bare", ESC50, [], score=0.5)
    path = record.write(tmp_path)
    done = hear("submit", "pack", "--results-dir", str(tmp_path), "--model", "bare")
    line = refusal(done)
    assert path.name in line and "no test predictions" in line and "again" in line


# -- tampering --------------------------------------------------------------------------------


def test_a_hand_edited_test_score_is_refused_naming_both_scores(
    pack: Path, tmp_path: Path, digits_task: Path
) -> None:
    path = record_path(pack)
    raw = json.loads(members(pack)[path])
    true_score = raw["test_score"]
    raw["test_score"] = true_score + 0.1
    bad = rewritten(pack, tmp_path / "edited.hear.zip", {path: json.dumps(raw).encode()})
    site = make_site(tmp_path)
    before = listing(site)
    for done in (hear("submit", "check", str(bad)),
                 hear("leaderboard", "add", str(bad), "--site", str(site))):  # fmt: skip
        line = refusal(done)
        assert (
            f"{bad}: {digits_task.name}: test_score {true_score + 0.1:.4f} in the record, "
            f"{true_score:.4f} from its predictions (top1_acc): refused"
        ) in line
    assert listing(site) == before  # the site is unchanged


def test_edited_predictions_are_refused_naming_both_scores(
    pack: Path, tmp_path: Path, digits_task: Path
) -> None:
    entry = json.loads(members(pack)[INDEX])["entries"][0]
    with np.load(io.BytesIO(members(pack)[entry["predictions"]["path"]])) as data:
        arrays = dict(data)
    targets = arrays["targets_0"]
    arrays["scores_0"] = targets.astype(np.float32)  # every clip of the first fold right
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    bad = rewritten(
        pack, tmp_path / "bad.hear.zip", {entry["predictions"]["path"]: buffer.getvalue()}
    )
    record = json.loads(members(pack)[entry["record"]["path"]])
    kept = record["test_score"]
    second = record["folds"][1]["scores"]["test"]["top1_acc"]
    line = refusal(hear("submit", "check", str(bad)))
    assert (
        f"{bad}: {digits_task.name}: test_score {kept:.4f} in the record, "
        f"{(1.0 + second) / 2:.4f} from its predictions (top1_acc): refused"
    ) in line


def test_an_edited_heareval_score_is_refused(pack: Path, tmp_path: Path) -> None:
    entry = json.loads(members(pack)[INDEX])["entries"][0]
    path = entry["heareval_scores"]["path"]
    raw = json.loads(members(pack)[path])
    split = next(k for k, v in raw.items() if isinstance(v, dict) and "test_score" in v)
    raw[split]["test_score"] = 0.99
    bad = rewritten(pack, tmp_path / "bad.hear.zip", {path: json.dumps(raw).encode()})
    line = refusal(hear("submit", "check", str(bad)))
    assert f"heareval test_score of {split} 0.9900 in the record" in line and "refused" in line


def test_a_file_changed_without_its_sha256_is_refused_naming_it(pack: Path, tmp_path: Path) -> None:
    path = record_path(pack)
    raw = json.loads(members(pack)[path])
    raw["task"]["path"] = "/elsewhere"  # a harmless change, but not the packed bytes
    changed = {path: json.dumps(raw).encode()}
    bad = rewritten(pack, tmp_path / "bad.hear.zip", changed, update_sha=False)
    line = refusal(hear("submit", "check", str(bad)))
    assert f"{bad}: {path}: its sha256 is not the one pack.json lists" in line


def test_a_member_pack_json_does_not_list_is_refused(pack: Path, tmp_path: Path) -> None:
    bad = tmp_path / "extra.hear.zip"
    bad.write_bytes(zip_bytes(members(pack) | {"records/extra.json": b"{}"}))
    line = refusal(hear("submit", "check", str(bad)))
    assert "records/extra.json is not listed in pack.json" in line


@pytest.mark.parametrize("name", ["../x", "/etc/x", "records/../../x", "C:/x", "a\\..\\x"])
def test_an_unsafe_member_is_refused(pack: Path, tmp_path: Path, name: str) -> None:
    bad = tmp_path / "slip.hear.zip"
    bad.write_bytes(zip_bytes(members(pack) | {name: b"x"}))
    site = make_site(tmp_path)
    before = listing(site)
    line = refusal(hear("leaderboard", "add", str(bad), "--site", str(site)))
    assert f"member {name!r} is not a safe relative path: refused" in line
    assert not (tmp_path / "x").exists() and listing(site) == before


def test_a_link_member_is_refused(pack: Path, tmp_path: Path) -> None:
    bad = tmp_path / "link.hear.zip"
    shutil.copy(pack, bad)
    with zipfile.ZipFile(bad, "a") as archive:
        info = zipfile.ZipInfo("records/link")
        info.external_attr = 0o120777 << 16  # a symbolic link
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(PackRefused, match="'records/link' is not a plain file"):
        check_pack(bad)


def test_a_newer_pack_version_is_refused(pack: Path, tmp_path: Path) -> None:
    files = members(pack)
    index = json.loads(files[INDEX]) | {"version": 2}
    bad = tmp_path / "v2.hear.zip"
    bad.write_bytes(zip_bytes(files | {INDEX: json.dumps(index).encode()}))
    with pytest.raises(PackRefused, match="pack version 2; this hear-runner reads version 1"):
        check_pack(bad)


# -- released task folders --------------------------------------------------------------------


def test_a_released_folder_at_another_version_is_refused(tmp_path: Path) -> None:
    synthetic(tmp_path / "results", "mine", ESC50, "v1.0.0", 0.75)
    done = hear("submit", "pack", "--results-dir", str(tmp_path / "results"), "--model", "mine",
                "-o", str(tmp_path / "mine.hear.zip"))  # fmt: skip
    line = refusal(done)
    assert f"{ESC50}: task version v1.0.0 in the record, but {ESC50} is released as version " \
        "v2.0.0: refused" in line  # fmt: skip
    assert not (tmp_path / "mine.hear.zip").exists()


def test_a_released_folder_at_its_version_passes(tmp_path: Path) -> None:
    synthetic(tmp_path / "results", "mine", ESC50, "v2.0.0", 0.75)
    index, data = build_pack(tmp_path / "results", "mine")
    checked = check_pack(io.BytesIO(data))
    assert checked.records[ESC50].test_score == 0.75 and index.entries[0].task == ESC50


def test_the_issue_s_example_of_a_tampered_score(tmp_path: Path) -> None:
    """A record scoring 0.91 whose predictions score 0.75: written as if by hand."""
    synthetic(tmp_path / "results", "mine", ESC50, "v2.0.0", 0.75, score=0.91)
    _, data = build_pack(tmp_path / "results", "mine")
    write_pack(data, tmp_path / "model.hear.zip")
    done = hear("submit", "check", str(tmp_path / "model.hear.zip"))
    assert refusal(done) == (
        f"error: {tmp_path / 'model.hear.zip'}: {ESC50}: test_score 0.9100 in the record, 0.7500 "
        "from its predictions (top1_acc): refused"
    )


# -- adding to a site -------------------------------------------------------------------------


def test_add_puts_the_model_on_the_site_once(pack: Path, tmp_path: Path, digits_task: Path) -> None:
    site = make_site(tmp_path)
    assert "numpy_logmel" not in (site / "index.html").read_text()
    done = hear("leaderboard", "add", str(pack), "--site", str(site))
    assert done.returncode == 0, done.stderr
    folder = site / "records" / "submissions" / "numpy_logmel"
    assert set(listing(folder)) == set(members(pack))
    assert read_results(site / "records").models() == ["numpy_logmel", "theirs"]
    index = (site / "index.html").read_text()
    assert 'href="models/numpy_logmel.html"' in index and digits_task.name in index
    assert "numpy_logmel" in (site / "models" / "numpy_logmel.html").read_text()
    again = hear("leaderboard", "add", str(pack), "--site", str(site))
    line = refusal(again)
    assert "model numpy_logmel is already on the site" in line and "--replace" in line
    replaced = hear("leaderboard", "add", str(pack), "--site", str(site), "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "replaced numpy_logmel" in " ".join(replaced.stdout.split())
    assert set(listing(folder)) == set(members(pack))
    assert [p.name for p in (site / "records" / "submissions").iterdir()] == ["numpy_logmel"]
    # The site written again from its results folder keeps the submission.
    write_site(site, tmp_path / "theirs")
    assert 'href="models/numpy_logmel.html"' in (site / "index.html").read_text()


def test_add_refuses_test_labels_of_the_packs_own_making(tmp_path: Path) -> None:
    """Scores that agree with predictions whose true labels were changed: consistent
    inside the pack (check passes), refused against the site's labels of the same task."""
    site = make_site(tmp_path)  # "theirs": the task's true labels (scene_fold's seed 0)
    record = record_with_predictions("cheat", ESC50, [scene_fold(1.0, 40, seed=5)])
    record.task.version = "v2.0.0"
    record.write(tmp_path / "cheat")
    _, data = build_pack(tmp_path / "cheat", "cheat")
    write_pack(data, tmp_path / "cheat.hear.zip")
    assert check_pack(tmp_path / "cheat.hear.zip").records[ESC50].test_score == 1.0
    before = listing(site)
    line = refusal(
        hear("leaderboard", "add", str(tmp_path / "cheat.hear.zip"), "--site", str(site))
    )
    assert f"{ESC50}: the test labels in its predictions of fold fold00 are not the task's" in line
    assert listing(site) == before
    # The same predictions with the task's own labels (seed 0's) are added.
    record = record_with_predictions("honest", ESC50, [scene_fold(0.9, 40)])
    record.task.version = "v2.0.0"
    record.write(tmp_path / "honest")
    _, data = build_pack(tmp_path / "honest", "honest")
    write_pack(data, tmp_path / "honest.hear.zip")
    done = hear("leaderboard", "add", str(tmp_path / "honest.hear.zip"), "--site", str(site))
    assert done.returncode == 0, done.stderr


def test_add_refuses_another_content_hash_of_a_site_task(tmp_path: Path) -> None:
    site = make_site(tmp_path, content_hash="aaa111")
    synthetic(tmp_path / "results", "mine", ESC50, "v2.0.0", 0.75, content_hash="bbb222")
    _, data = build_pack(tmp_path / "results", "mine")
    write_pack(data, tmp_path / "mine.hear.zip")
    before = listing(site)
    line = refusal(hear("leaderboard", "add", str(tmp_path / "mine.hear.zip"), "--site", str(site)))
    assert f"{ESC50}: content hash bbb222 in the pack, aaa111 on the site" in line
    assert listing(site) == before
    synthetic(tmp_path / "same", "mine", ESC50, "v2.0.0", 0.75, content_hash="aaa111")
    _, data = build_pack(tmp_path / "same", "mine")
    write_pack(data, tmp_path / "same.hear.zip")  # the site's preparation: added
    done = hear("leaderboard", "add", str(tmp_path / "same.hear.zip"), "--site", str(site))
    assert done.returncode == 0, done.stderr
    assert 'href="models/mine.html"' in (site / "index.html").read_text()


def test_a_pack_changed_after_its_check_is_not_extracted(pack: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.hear.zip"
    shutil.copy(pack, copy)
    checked = check_pack(copy)
    path = record_path(pack)
    raw = json.loads(members(pack)[path]) | {"test_score": 1.0}
    rewritten(pack, copy, {path: json.dumps(raw).encode()})  # swapped in after the check
    (tmp_path / "out").mkdir()
    with pytest.raises(PackRefused, match="changed while it was being added"):
        extract_pack(copy, checked, tmp_path / "out")
    assert listing(tmp_path / "out") == {}


def test_add_to_a_new_folder_makes_a_site_of_submissions(pack: Path, tmp_path: Path) -> None:
    """A lab's leaderboard of submissions alone: the first add makes the site."""
    site = tmp_path / "new"
    done = hear("leaderboard", "add", str(pack), "--site", str(site), "--reference", "hear2021")
    assert done.returncode == 0, done.stderr
    assert json.loads((site / "site.json").read_text())["references"] == ["hear2021"]
    assert 'href="models/numpy_logmel.html"' in (site / "index.html").read_text()
    assert (site / "records" / "submissions" / "numpy_logmel").is_dir()
    # A folder with other things in it is not made a site, and nothing is written there.
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    line = refusal(hear("leaderboard", "add", str(pack), "--site", str(busy)))
    assert "not empty and not a leaderboard site (no site.json)" in line
    assert listing(busy) == {"notes.txt": b"mine"}
    # An unknown reference is refused before anything is written.
    line = refusal(hear("leaderboard", "add", str(pack), "--site", str(tmp_path / "other"),
                        "--reference", "hear2099"))  # fmt: skip
    assert "no such reference results" in line and not (tmp_path / "other").exists()


def test_a_model_on_the_site_from_its_results_folder_is_not_replaced(
    pack: Path, results: Path, tmp_path: Path
) -> None:
    write_site(tmp_path / "site", results)
    before = listing(tmp_path / "site")
    add = ("leaderboard", "add", str(pack), "--site", str(tmp_path / "site"))
    assert "model numpy_logmel is already on the site" in refusal(hear(*add))
    line = refusal(hear(*add, "--replace"))
    assert "records on the site at" in line and "are not a submission" in line
    assert listing(tmp_path / "site") == before

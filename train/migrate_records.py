"""One-off migration of the records written before digitpair/lab/records.py (kept to show what it
did).

For every study folder under train/runs/ and every weights/<variant>/config.json:
- the RunConfig's variant key `model` becomes `variant`;
- config fields the code did not have when the run trained get the value the run used:
  `encoder` "padded" (the only trunk before the field existed, up to commit b2292be),
  `precision` "fp32" (autocast came with the field, default fp32), `head` "order" (the only head),
  and the levers that came later with defaults that reproduce the earlier loop exactly
  (tests/test_levers.py): `label_smoothing` 0, `ema` 0, `val_fold` 0, `tta` 0, `members` 1;
- each run's final.json gains `provenance`: its `device` as recorded, "unknown" for everything
  the run never recorded (commit, dirty, machine, torch, times). Invocation-level facts stay in
  invocations.jsonl and are not copied into runs: which invocation trained which run was not
  recorded;
- each folder's study.toml states `final`: true where its runs scored the test pairs;
- each weights/<variant>/README.md (its card shows the training config) is rendered again;
- then the study folder is packed into runs.jsonl.gz (digitpair.lab.records.pack); a study already
  packed gets the fields its rows lack in the pack itself.

    python train/migrate_records.py            # idempotent: migrated records are left as they are
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from pathlib import Path

from digitpair.core.config import RunConfig
from digitpair.lab import records
from digitpair.lab.cards import variant_card
from digitpair.lab.study import study_folders

ADDED = {
    "encoder": "padded",
    "precision": "fp32",
    "head": "order",
    "label_smoothing": 0.0,
    "ema": 0.0,
    "val_fold": 0,
    "tta": 0,
    "members": 1,
}
UNRECORDED = ("commit", "dirty", "machine", "torch", "started_at", "finished_at")


def migrate_config(train_config: dict) -> dict:
    config = {**ADDED, **{("variant" if k == "model" else k): v for k, v in train_config.items()}}
    order = [f.name for f in dataclasses.fields(RunConfig)]  # as RunConfig.to_dict writes it
    return dict(sorted(config.items(), key=lambda kv: order.index(kv[0])))


def migrate_run(run_dir: Path) -> bool:
    """Migrate one run folder in place; True if it was tested on the test pairs."""
    config_path, final_path = run_dir / "config.json", run_dir / "final.json"
    config = json.loads(config_path.read_text())
    config["train_config"] = migrate_config(config["train_config"])
    config["encoder"] = config["train_config"]["encoder"]
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    final = json.loads(final_path.read_text())
    if "provenance" not in final:
        final["provenance"] = {
            **dict.fromkeys(UNRECORDED, records.UNKNOWN),
            "device": final.pop("device"),
        }
        final_path.write_text(json.dumps(final, indent=2) + "\n")
    return config["train_config"]["test"]


def state_final(study_toml: Path, final: bool) -> None:
    text = study_toml.read_text()
    if not re.search(r"^final\s*=", text, flags=re.M):
        text = re.sub(
            r"^(name = .*\n)", rf"\1final = {str(final).lower()}\n", text, count=1, flags=re.M
        )
        study_toml.write_text(text)


def migrate_pack(study_dir: Path) -> None:
    """Add the config fields its packed rows lack, in place."""
    with gzip.open(study_dir / records.PACK, "rt") as f:
        rows = [json.loads(line) for line in f]
    for row in rows:
        row["config"] = migrate_config(row["config"])
    records.write_pack(study_dir, rows)


def main() -> None:
    for study_dir in study_folders():
        if (study_dir / records.PACK).is_file():
            migrate_pack(study_dir)
        runs = [d for d in sorted(study_dir.iterdir()) if d.is_dir() and records.is_done(d)]
        tested = {migrate_run(d) for d in runs}
        if len(tested) > 1:
            raise SystemExit(f"{study_dir}: some runs scored the test pairs and some did not")
        if tested:
            state_final(study_dir / "study.toml", tested.pop())
        packed = records.load(
            records.pack(study_dir).parent
        )  # reads back through RunRecord: complete
        print(f"{study_dir}: {len(runs)} run folders migrated, {len(packed)} runs packed")
    for config_path in sorted(Path("weights").glob("*/config.json")):
        config = json.loads(config_path.read_text())
        config["train_config"] = migrate_config(config["train_config"])
        config_path.write_text(json.dumps(config, indent=2) + "\n")
        # The variant's card shows its training config: rendered again so the two agree.
        card = config_path.parent / "README.md"
        repo_id = re.search(r'load_pretrained\("([^"]+)"\)', card.read_text()).group(1)
        variant_card(config, repo_id).save(card)
        print(f"{config_path}: migrated, {card} rendered again")


if __name__ == "__main__":
    main()

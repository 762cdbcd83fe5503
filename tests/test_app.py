"""The app: its computation on small models saved in tmp, then the real server through
gradio_client."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFilter
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from digitpair import VARIANTS, WeightsError, build_model, guard
from digitpair.core.checkout import ROOT
from digitpair.core.drawing import MAX_SIDE, BlankDrawing, DrawingError, preprocess
from digitpair.core.models import Ensemble, StackedEnsemble
from digitpair.core.weights import NETWORKS, save_variant
from digitpair.guard import Drawing, Judgement, Limits
from digitpair.page import about, served
from digitpair.page.compare import compare, uploaded_image
from digitpair.page.examples import examples as page_examples
from digitpair.page.served import MODEL_REPO_ENV, NetworkSet, load_set, load_sets
from digitpair.page.view import PLAIN_NAMES, enlarge, headline, joint_svg
from digitpair.page.view import page_view as view_of

DIGIT_HEADS = [
    name for name in VARIANTS if VARIANTS[name].digit_loss
]  # simple_cnn, shared_aux, unshared_aux


def drawing(digit: torch.Tensor, size: int = 280) -> PIL.Image.Image:
    """A 28x28 MNIST digit as a person's drawing: black on white, canvas size."""
    return PIL.Image.fromarray(255 - digit.numpy()).resize(
        (size, size), PIL.Image.Resampling.BILINEAR
    )


def first_of(mnist, label: int) -> torch.Tensor:
    return mnist.test_images[int((mnist.test_labels == label).nonzero()[0])]


# --- pure functions ----------------------------------------------------------------------------


def test_compare_returns_the_documented_json(weights, mnist):
    loaded = load_set(str(weights))
    two, seven = drawing(first_of(mnist, 2)), drawing(first_of(mnist, 7))
    result = compare(loaded, two, seven).to_json()
    assert json.loads(json.dumps(result)) == result  # plain JSON
    assert list(result) == ["networks", "models", "drawings", "judged", "not_judged", "missing"]
    assert list(result["models"]) == list(VARIANTS)
    assert result["networks"] == "ours" and result["missing"] == {}
    assert result["judged"] is True and result["not_judged"] is None
    x = torch.stack([preprocess(two), preprocess(seven)])[None]
    # Each drawing: the guard's word (this guard judges every drawing a digit) and the readers' two
    # likeliest digits, from their mean distribution, as the cards show them.
    probs = [loaded.models[name].predict(x).digit_probs[0] for name in DIGIT_HEADS]
    readers = torch.stack(probs).mean(0)
    for i, box in enumerate(["first", "second"]):
        entry = result["drawings"][box]
        assert list(entry) == ["judgement", "digits"] and entry["judgement"] == "digit"
        likeliest = [int(readers[i].argmax()), pytest.approx(float(readers[i].max()))]
        assert entry["digits"][0] == likeliest
        assert len(entry["digits"]) == 2 and entry["digits"][1][0] != entry["digits"][0][0]
    for name, entry in result["models"].items():
        pred = loaded.models[name].predict(x)
        assert set(entry) == {"p_leq", "first_is_leq", "digits"}
        assert entry["p_leq"] == pytest.approx(float(pred.p_leq[0]))
        assert entry["first_is_leq"] == (entry["p_leq"] >= 0.5)
        if name not in DIGIT_HEADS:
            assert entry["digits"] is None
            continue
        for i, box in enumerate(["first", "second"]):
            guesses = entry["digits"][box]
            probs, digits = pred.digit_probs[0, i].topk(3)
            assert [d for d, _ in guesses] == digits.tolist()
            assert [p for _, p in guesses] == pytest.approx(probs.tolist())
            assert all(isinstance(d, int) for d, _ in guesses)


def page_view(nets: NetworkSet, first, second, known=()):
    """The page's view of two drawings, as app.show makes it: the view of their comparison."""
    return view_of(compare(nets, first, second, known))


def cards_of(html: str) -> dict[str, str]:
    """{network: its card's HTML}, in page order."""
    return dict(
        re.findall(r'<div class="card[^"]*" id="card-([^"]+)">(.*?)(?=<div class="card|$)', html)
    )


def test_a_variant_that_fails_to_load_is_reported_and_the_others_serve(weights, tmp_path, mnist):
    broken = tmp_path / "weights"
    for name in VARIANTS:
        save_variant(load_set(str(weights)).models[name], name, broken / name)
    (broken / "shared" / "model.safetensors").write_bytes(b"not safetensors")
    loaded = load_set(str(broken))
    assert list(loaded.missing) == ["shared"] and "model.safetensors" in loaded.missing["shared"]
    assert list(loaded.models) == [n for n in VARIANTS if n != "shared"]
    two, seven = drawing(first_of(mnist, 2)), drawing(first_of(mnist, 7))
    result = compare(loaded, two, seven).to_json()
    assert list(result["models"]) == list(loaded.models) and result["missing"] == loaded.missing
    cards = cards_of(page_view(loaded, two, seven).cards)
    assert list(cards) == list(VARIANTS)  # registry order, the failed one in its place
    assert "not loaded" in cards["shared"] and "P(first" not in cards["shared"]
    assert all("P(first ≤ second)" in cards[n] for n in loaded.models)


def test_the_app_starts_on_a_damaged_config_and_names_the_variant(
    weights, tmp_path, monkeypatch, caplog, mnist
):
    broken = shutil.copytree(weights, tmp_path / "weights")
    (broken / "unshared" / "config.json").write_bytes(b'{"variant": "unshared\xff"}')  # not UTF-8
    shutil.rmtree(broken / "fc")  # a copy without the report's networks
    monkeypatch.setenv(MODEL_REPO_ENV, str(broken))
    loaded = load_set()
    assert list(loaded.models) == [n for n in VARIANTS if n != "unshared"]
    assert (
        list(loaded.missing) == ["unshared"]
        and "unshared/config.json is not UTF-8" in loaded.missing["unshared"]
    )
    assert "variant unshared not loaded" in caplog.text and "unshared/config.json" in caplog.text
    missing = compare(loaded, drawing(first_of(mnist, 2)), drawing(first_of(mnist, 7))).to_json()[
        "missing"
    ]
    assert list(missing) == ["unshared"] and "not UTF-8" in missing["unshared"]
    # `python app.py` itself: the module a Space runs imports (and would serve), naming the variant.
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "import app; print(sorted(app.SETS['ours'].models)); "
            "print(app.SETS['report'].models, list(app.SETS['report'].missing))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, MODEL_REPO_ENV: str(broken)},
    )
    assert started.returncode == 0, started.stderr
    ours, report = started.stdout.splitlines()
    assert ours == "['shared', 'shared_aux', 'simple_cnn', 'unshared_aux']"
    assert report == "{} " + str(list(VARIANTS))
    assert (
        "variant unshared not loaded (ours networks)" in started.stderr
        and "Traceback" not in started.stderr
    )
    assert "variant shared_aux not loaded (report networks)" in started.stderr
    assert "fc/shared_aux/config.json is missing" in started.stderr


def test_the_choice_switches_the_cards_and_the_api_to_that_set(weights, mnist):
    assert list(served.CHOICES) == list(NETWORKS) and served.DEFAULT_NETWORKS in NETWORKS
    sets = load_sets(str(weights))
    assert {k: (list(s.models), s.missing, s.networks) for k, s in sets.items()} == {
        k: (list(VARIANTS), {}, k) for k in NETWORKS
    }
    two, seven = drawing(first_of(mnist, 2)), drawing(first_of(mnist, 7))
    x = torch.stack([preprocess(two), preprocess(seven)])[None]
    p = {}
    for networks, loaded in sets.items():
        assert served.choose(sets, networks) is loaded
        result = compare(loaded, two, seven).to_json()
        view = page_view(loaded, two, seven)
        cards = cards_of(view.cards)
        assert result["networks"] == networks and list(cards) == list(VARIANTS)
        for name, card in cards.items():
            model = loaded.models[name]
            p[networks, name] = float(model.predict(x).p_leq[0])
            assert result["models"][name]["p_leq"] == pytest.approx(p[networks, name])
            assert f"P(first ≤ second) = {p[networks, name]:.2f}" in card
            fc = (
                networks == "report" and VARIANTS[name].pair_loss
            )  # simple_cnn compares in code in both sets
            assert model.head_name == ("fc" if fc else "order")
            assert ("FC head: one fully connected layer, Linear(20, 2)" in card) == fc
            assert ("order head" in card) == (not fc and VARIANTS[name].pair_loss)
            if name in DIGIT_HEADS:
                # The picture is the two digit readings; only with the order head is its blue mass
                # the P.
                mass = float(re.search(r"in all ([0-9.]+)", card).group(1))
                assert (
                    "its verdict comes from that layer, so it can disagree with its own digit "
                    "reading" in card
                ) == fc
                if not fc:
                    assert mass == pytest.approx(p[networks, name], abs=0.006)
        verdicts = {name: p[networks, name] >= 0.5 for name in VARIANTS}
        assert view.headline == headline(verdicts, None)
    assert p["ours", "shared_aux"] != pytest.approx(p["report", "shared_aux"], abs=1e-3)
    for unknown in ["theirs", "", "OURS", None, ["ours"]]:
        with pytest.raises(served.ChoiceError, match="choose one of 'ours' .*, 'report'"):
            served.choose(sets, unknown)


def test_a_broken_report_set_names_the_problem_and_ours_still_serve(weights, tmp_path, mnist):
    broken = shutil.copytree(weights, tmp_path / "weights")
    (broken / "fc" / "shared_aux" / "model.safetensors").write_bytes(b"not safetensors")
    sets = load_sets(str(broken))
    assert list(sets["ours"].models) == list(VARIANTS) and sets["ours"].missing == {}
    assert list(sets["report"].missing) == ["shared_aux"]
    assert "fc/shared_aux/model.safetensors is corrupt" in sets["report"].missing["shared_aux"]
    two, seven = drawing(first_of(mnist, 2)), drawing(first_of(mnist, 7))
    cards = cards_of(page_view(sets["report"], two, seven).cards)
    assert list(cards) == list(VARIANTS) and "not loaded" in cards["shared_aux"]
    assert (
        "fc/shared_aux/model.safetensors" in cards["shared_aux"]
        and "P(first" not in cards["shared_aux"]
    )
    assert compare(sets["report"], two, seven).to_json()["missing"] == sets["report"].missing
    # No fc/ at all (weights exported before the report's networks): every card of that set says
    # why.
    shutil.rmtree(broken / "fc")
    sets = load_sets(str(broken))
    assert list(sets["ours"].models) == list(VARIANTS) and sets["report"].models == {}
    assert all(
        f"fc/{name}/config.json is missing" in why for name, why in sets["report"].missing.items()
    )
    view = page_view(sets["report"], two, seven)
    assert "No model is loaded" in view.headline and list(cards_of(view.cards)) == list(VARIANTS)
    with pytest.raises(
        WeightsError,
        match="no model is loaded .*'report' networks.*fc/shared/config.json is missing",
    ):
        compare(sets["report"], two, seven).to_json()
    assert list(compare(sets["ours"], two, seven).to_json()["models"]) == list(VARIANTS)


def test_no_models_is_a_clear_message(tmp_path):
    loaded = load_set(str(tmp_path / "nowhere"))
    assert loaded.models == {} and list(loaded.missing) == list(VARIANTS)
    with pytest.raises(WeightsError, match="no model is loaded"):
        compare(loaded, None, None).to_json()
    view = page_view(loaded, None, None)
    assert "No model is loaded" in view.headline and list(cards_of(view.cards)) == list(VARIANTS)
    assert all("not loaded" in card for card in cards_of(view.cards).values())


def test_models_come_from_the_repo_in_the_environment(weights, monkeypatch):
    monkeypatch.setenv(
        MODEL_REPO_ENV, str(weights)
    )  # load_pretrained takes a folder or a Hub id alike
    loaded = load_set()
    assert loaded.source == str(weights) and list(loaded.models) == list(VARIANTS)
    monkeypatch.delenv(MODEL_REPO_ENV)
    assert load_set().source == str(served.WEIGHTS_DIR)


def test_page_view_turns_a_bad_drawing_into_the_headline(weights, mnist):
    loaded = load_set(str(weights))
    dot = PIL.Image.new("L", (280, 280), 255)
    dot.putpixel((140, 140), 0)
    view = page_view(loaded, drawing(first_of(mnist, 3)), dot)
    assert view.headline.startswith("second image: the drawing is only a dot") and view.cards == ""
    assert (
        view.previews[0].shape == (168, 168) and view.previews[1] is None
    )  # the good box is still shown
    # An untouched or cleared box is not an error: the page asks for a digit.
    paper = PIL.Image.new("RGB", (280, 280), "white")
    assert page_view(loaded, paper, None).headline == "Draw a digit in both boxes."
    assert (
        page_view(loaded, drawing(first_of(mnist, 3)), paper).headline
        == "Now draw a digit in the second box."
    )


def test_a_blank_box_is_known_by_its_type_not_its_wording(weights, mnist):
    paper = PIL.Image.new("RGB", (280, 280), "white")
    for blank in (
        paper,
        None,
        {"background": None, "layers": [], "composite": None},
        PIL.Image.new("RGBA", (280, 280), (0, 0, 0, 0)),
    ):
        with pytest.raises(BlankDrawing):
            preprocess(blank)
    dot = PIL.Image.new("L", (280, 280), 255)
    dot.putpixel((140, 140), 0)
    with pytest.raises(DrawingError) as refused:
        preprocess(dot)
    assert not isinstance(refused.value, BlankDrawing)  # a dot is drawn: not a blank box
    shown = compare(load_set(str(weights)), drawing(first_of(mnist, 3)), paper)
    reworded = dataclasses.replace(shown, problems={"second": BlankDrawing("other words")})
    assert view_of(reworded).headline == "Now draw a digit in the second box."
    # A DrawingError in a blank box's words is still a problem to report.
    same_words = dataclasses.replace(shown, problems={"second": DrawingError("nothing drawn")})
    assert view_of(same_words).headline == "second image: nothing drawn"


def test_one_card_per_network_says_each_thing_once(weights, mnist):
    loaded = load_set(str(weights))
    two, seven = drawing(first_of(mnist, 2)), drawing(first_of(mnist, 7))
    view = page_view(loaded, two, seven)
    result = compare(loaded, two, seven).to_json()["models"]
    cards = cards_of(view.cards)
    assert list(cards) == list(VARIANTS)
    for name, card in cards.items():
        entry = result[name]
        verdict = re.search(r'<div class="verdict">(first [≤>] second)', card).group(1)
        assert verdict == ("first ≤ second" if entry["first_is_leq"] else "first > second")
        # The plain name leads; the code name only in the folded detail line.
        assert re.match(r'<div class="name">' + re.escape(PLAIN_NAMES[name]) + "</div>", card)
        assert card.count(name) == 1 and re.search(
            f"<details[^>]*><summary>how it works</summary>{name}: ", card
        )
        assert card.count(f"P(first ≤ second) = {entry['p_leq']:.2f}") == 1
        if entry["digits"] is None:
            assert "never told what a digit is: no digit reading" in card and "<svg" not in card
            continue
        reading = [entry["digits"][box][0] for box in ("first", "second")]
        assert (
            f"reads first: <b>{reading[0][0]}</b> ({reading[0][1]:.0%}), "
            f"second: <b>{reading[1][0]}</b> ({reading[1][1]:.0%})"
        ) in card
        # The picture: 10x10 cells of p_first(i) p_second(j), blue where i <= j; the blue mass is
        # P(first
        # <= second), and its one-line key says which colour is which.
        assert card.count("<svg") == 1 and "<polyline" in card
        assert re.search(
            r'<span class="key leq">blue</span>: first ≤ second .*<span class="key '
            r'gt">orange</span>: '
            r"first > second",
            card,
        )
        mass = float(re.search(r"in all ([0-9.]+)\)", card).group(1))
        assert mass == pytest.approx(entry["p_leq"], abs=0.006)
    assert (
        not view.headline.startswith("Example") and "right" not in view.cards
    )  # not an example: no truth, no marks


def test_joint_picture_colours_the_triangle():
    probs = torch.zeros(2, 10)
    probs[0, 3], probs[0, 8], probs[1, 5] = 0.75, 0.25, 1.0  # first: 3 or 8; second: 5
    svg = joint_svg(probs)
    cells = re.findall(
        r'<rect x="([0-9.]+)" y="([0-9.]+)" width="14" height="14" class="(leq|gt)" '
        r'fill-opacity="([0-9.]+)"',
        svg,
    )
    assert [(c, float(o)) for _, _, c, o in cells] == [
        ("leq", pytest.approx(0.75**0.5, abs=1e-3)),
        ("gt", pytest.approx(0.25**0.5, abs=1e-3)),
    ]  # (3, 5), (8, 5)
    assert [(float(x), float(y)) for x, y, _, _ in cells] == [
        (16 + 5 * 14, 16 + 3 * 14),
        (16 + 5 * 14, 16 + 8 * 14),
    ]


def test_headline_counts_and_grammar():
    assert (
        headline({"a": True, "b": True, "c": True}, None)
        == "**first ≤ second**: all 3 models agree."
    )
    assert headline({"a": False, "b": False}, None) == "**first > second**: all 2 models agree."
    assert (
        headline({"a": True, "b": False, "c": True}, None)
        == "**Split**: 2 say first ≤ second, 1 says first > second."
    )
    # An example's headline gives the answer once, then how many models gave it.
    assert (
        headline({"a": True, "b": False, "c": True}, (8, 3))
        == "Example 8 and 3: the answer is **first > second** (8 > 3); 1 of 3 models says so."
    )
    assert headline({"a": False, "b": False}, (8, 3)).endswith("(8 > 3); all 2 models say so.")

    # Doubts come first, plainly, in the guard's words, and the numbers still follow.
    def said(judgement, a, b):
        return Drawing(judgement, ((a, 0.6), (b, 0.3)))

    not_a_digit, unsure = said(Judgement.NOT_A_DIGIT, 0, 8), said(Judgement.UNSURE, 1, 7)
    digit = said(Judgement.DIGIT, 7, 1)
    assert (
        headline({"a": True, "b": True}, None, {"first": not_a_digit, "second": digit})
        == "**The first drawing: not a digit.** Read as digits anyway: **first ≤ second**, all "
        "2 models agree."
    )
    three = {"a": True, "b": False, "c": True}
    assert (
        headline(three, None, {"first": digit, "second": unsure})
        == "**The second drawing: unsure, 1 or 7.** **Split**: 2 say first ≤ second, 1 says "
        "first > second."
    )
    # Without a guard, the page says the drawings are not judged, and why.
    assert (
        headline({"a": True}, None, {"first": Drawing(None, None)}, "the guard is missing")
        == "**first ≤ second**: the model says so. *Drawings are not judged: the guard is "
        "missing.*"
    )


def test_examples_name_their_digits_and_the_page_tells_the_truth(weights):
    examples = page_examples()
    assert [e.digits for e in examples] == [
        (2, 7),
        (8, 3),
        (5, 5),
        (0, 9),
        (9, 1),
        (4, 6),
    ]  # make_examples.PAIRS
    assert [e.label for e in examples[:2]] == ["2 and 7", "8 and 3"]
    loaded = load_set(str(weights))
    eight_three = examples[1]
    view = page_view(loaded, str(eight_three.first), str(eight_three.second), tuple(examples))
    assert view.headline.startswith("Example 8 and 3: the answer is **first > second** (8 > 3);")
    cards = cards_of(view.cards)
    right = [n for n, c in cards.items() if "✓ right" in c]
    wrong = [n for n, c in cards.items() if "✗ wrong" in c]
    assert sorted(right + wrong) == sorted(VARIANTS)
    says_gt = {n for n, c in cards.items() if '<div class="verdict">first > second' in c}
    assert set(right) == says_gt  # 8 > 3: right is saying first > second
    assert view.headline.endswith(
        f"{len(right)} of 5 models {'says' if len(right) == 1 else 'say'} so."
        if len(right) < 5
        else "all 5 models say so."
    )
    # A stroke added to an example makes it someone's drawing: no truth is claimed for it.
    changed = PIL.Image.open(eight_three.first).convert("L")
    changed.paste(0, (20, 20, 40, 260))
    view = page_view(loaded, changed, str(eight_three.second), tuple(examples))
    assert not view.headline.startswith("Example") and "right" not in view.cards


def test_enlarge_shows_each_of_the_196_pixels_as_a_square():
    digit = torch.arange(196, dtype=torch.float32).reshape(14, 14)
    big = enlarge(digit, factor=12)
    assert big.shape == (168, 168) and big.dtype == np.uint8
    assert (big[12 * 3 : 12 * 4, 12 * 5 : 12 * 6] == 3 * 14 + 5).all()


def test_api_inputs_must_be_files_gradio_checked():
    upload = {"path": "/tmp/gradio/abc/two.png", "meta": {"_type": "gradio.FileData"}}
    assert uploaded_image(upload) is upload
    pad = {"background": None, "layers": [], "composite": upload}
    assert uploaded_image(pad) is pad
    for unchecked in [
        "/etc/hostname",
        {"path": "/etc/hostname"},
        {"background": None, "layers": [], "composite": "/etc/x.png"},
        3,
    ]:
        with pytest.raises(DrawingError, match="handle_file"):
            uploaded_image(unchecked)


def recording(folder: Path, name: str, **recorded) -> None:
    """Add what an export records (study, setting, study_summary ...) to a variant's config.json."""
    path = folder / name / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **recorded}))


def test_about_tables_say_what_the_served_weights_record(weights, tmp_path, monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv(MODEL_REPO_ENV, raising=False)
    # Weights that record no study: every number unknown, nothing inferred; no reports in the copy.
    text = about.about_markdown(load_sets(str(weights)), tmp_path)
    assert "the study's reports are not in this copy" in text
    assert text.count("from study unknown, setting unknown:") == 2
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows[:2] == [
        "| `simple_cnn` | 1 | unknown | unknown | unknown |",
        "| `shared` | 1 | unknown | - | unknown |",
    ]  # no digit outputs: no digit accuracy
    assert len(rows) == 2 * len(VARIANTS)
    # Weights that record their study, setting and numbers; one of the report's from another
    # setting.
    folder = shutil.copytree(weights, tmp_path / "weights")
    summary = {
        "rounds": 15,
        "val_acc_mean": None,
        "val_acc_std": None,
        "test_acc_mean": 97.8433,
        "test_acc_std": 0.5512,
        "test_digit_acc_mean": 96.1,
        "test_digit_acc_std": 0.44,
    }
    for name in VARIANTS:
        recording(
            folder,
            name,
            study="best",
            setting="recipe5",
            members=1,
            **({} if name == "unshared" else {"study_summary": summary}),
        )
        recording(
            folder / "fc",
            name,
            study="other",
            setting="recipe_fc" if name != "shared" else "x",
            study_summary={
                **summary,
                "rounds": 1,
                "test_acc_mean": 50.0,
                "test_acc_std": None,
                "test_digit_acc_mean": None,
                "test_digit_acc_std": None,
            },
        )
    for study in ("best", "other", "seed2020"):
        (tmp_path / "train" / "results" / study).mkdir(parents=True)
        (tmp_path / "train" / "results" / study / "report.md").write_text("# report\n")
    sets = load_sets(str(folder))
    text = about.about_markdown(sets, tmp_path)
    assert "| network | networks averaged | pair accuracy | digit accuracy | rounds |" in text
    assert "Our networks (order head), from study `best`, setting `recipe5`:" in text
    assert (
        "The 2020 report's networks (FC head), from study `other`, setting `recipe_fc` "
        "(`simple_cnn`, "
        "`shared_aux`, `unshared`, `unshared_aux`); study `other`, setting `x` (`shared`):"
    ) in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows[: len(VARIANTS)] == [
        "| `simple_cnn` | 1 | 97.8 ± 0.6 | 96.1 ± 0.4 | 15 |",
        "| `shared` | 1 | 97.8 ± 0.6 | - | 15 |",
        "| `shared_aux` | 1 | 97.8 ± 0.6 | 96.1 ± 0.4 | 15 |",
        "| `unshared` | 1 | unknown | - | unknown |",
        "| `unshared_aux` | 1 | 97.8 ± 0.6 | 96.1 ± 0.4 | 15 |",
    ]
    assert rows[len(VARIANTS)] == "| `simple_cnn` | 1 | 50.0 | unknown | 1 |"  # one round: no std
    # The reports of the recorded studies and of those the text names, named: no URL known.
    assert (
        "More: `train/results/best/report.md`, `train/results/other/report.md`, "
        "`train/results/seed2020/report.md`."
    ) in text
    assert (
        "`train/results/best/report.md`'s `head` table" in text
        and "`train/results/seed2020`" in text
    )
    local = about.about_markdown(sets, tmp_path, link=lambda p: f"/files/{p.parent.name}")
    assert "[train/results/other/report.md](/files/other)" in local
    # A set that did not load says so.
    shutil.rmtree(folder / "fc")
    assert "The 2020 report's networks (FC head): none loaded." in about.about_markdown(
        load_sets(str(folder))
    )
    monkeypatch.setenv("SPACE_ID", "someone/digitpair")
    monkeypatch.setenv(MODEL_REPO_ENV, "someone/weights")
    text = about.about_markdown(sets, tmp_path)
    assert (
        "(https://huggingface.co/spaces/someone/digitpair/blob/main/train/results/best/report.md)"
        in text
    )
    assert "[the weights on the Hub](https://huggingface.co/someone/weights)" in text
    assert "[the source code](https://huggingface.co/spaces/someone/digitpair/tree/main)" in text


# --- the real server -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(served_app):
    return Client(served_app[1], verbose=False)


@pytest.fixture(scope="module")
def digit_files(mnist, tmp_path_factory):
    """A clear 2 and a clear 7 (MNIST's first test images of each): raw white-on-black 28x28
    PNGs."""
    folder = tmp_path_factory.mktemp("digits")
    paths = {}
    for label in (2, 7):
        paths[label] = folder / f"mnist_{label}.png"
        PIL.Image.fromarray(first_of(mnist, label).numpy()).save(paths[label])
    return paths


def test_api_compares_real_mnist_digits(client, served_app, digit_files):
    two, seven = handle_file(str(digit_files[2])), handle_file(str(digit_files[7]))
    up = client.predict(two, seven, api_name="/compare")
    down = client.predict(seven, two, api_name="/compare")
    app = served_app[0]
    assert list(up["models"]) == list(app.SETS["ours"].models)
    assert (
        up == compare(app.SETS["ours"], str(digit_files[2]), str(digit_files[7])).to_json()
    )  # same bytes, same numbers
    for name in DIGIT_HEADS:  # the variants that know digits: strong on a clear 2 and 7
        assert up["models"][name]["first_is_leq"] and not down["models"][name]["first_is_leq"], name
        assert [up["models"][name]["digits"][box][0][0] for box in ("first", "second")] == [2, 7], (
            name
        )
    # A Sketchpad dict, as the page sends it, gives the same answer.
    pad = client.predict(
        {"background": None, "layers": [], "composite": two}, seven, api_name="/compare"
    )
    assert pad == up


def test_api_takes_the_choice_of_networks_ours_by_default(client, served_app, digit_files):
    two, seven = handle_file(str(digit_files[2])), handle_file(str(digit_files[7]))
    default = client.predict(two, seven, api_name="/compare")
    assert (
        default["networks"] == "ours"
        and client.predict(two, seven, "ours", api_name="/compare") == default
    )
    report = client.predict(two, seven, networks="report", api_name="/compare")
    assert (
        report["networks"] == "report"
        and client.predict(two, seven, "report", api_name="/compare") == report
    )
    assert (
        report
        == compare(served_app[0].SETS["report"], str(digit_files[2]), str(digit_files[7])).to_json()
    )
    for unknown in ["theirs", ""]:
        with pytest.raises(
            AppError,
            match=f"networks={unknown!r} is not a set of networks here; choose one of 'ours'",
        ):
            client.predict(two, seven, unknown, api_name="/compare")


def test_api_judges_a_dot_a_letter_and_a_real_digit_as_the_page_does(
    client, served_app, digit_files, mnist, tmp_path
):
    files = {kind: tmp_path / f"{kind}.png" for kind in ("dot", "letter K")}
    for kind, path in files.items():
        NON_DIGITS[kind](mnist).save(path)
    two, seven = handle_file(str(digit_files[2])), handle_file(str(digit_files[7]))
    cases = [(two, files["dot"], "first"), (files["letter K"], seven, "second")]
    for first, second, digit_box in cases:
        first = handle_file(str(first)) if isinstance(first, os.PathLike) else first
        second = handle_file(str(second)) if isinstance(second, os.PathLike) else second
        result = client.predict(first, second, api_name="/compare")
        assert result["judged"] is True and result["not_judged"] is None
        odd_box = "second" if digit_box == "first" else "first"
        assert result["drawings"][digit_box]["judgement"] == "digit"
        assert result["drawings"][digit_box]["digits"][0][0] == (2 if digit_box == "first" else 7)
        assert result["drawings"][odd_box]["judgement"] == "not a digit"
        # The page says the same of them.
        page = page_view(served_app[0].SETS["ours"], first["path"], second["path"]).headline
        assert page.startswith(f"**The {odd_box} drawing: not a digit.**")


def test_bad_inputs_get_a_clear_message_and_the_server_keeps_serving(client, digit_files, tmp_path):
    def png(name, image):
        image.save(tmp_path / name)
        return handle_file(str(tmp_path / name))

    dot = PIL.Image.new("L", (280, 280), 255)
    dot.putpixel((140, 140), 0)
    (tmp_path / "notes.txt").write_text("not an image")
    bad = [
        (png("blank.png", PIL.Image.new("L", (280, 280), 255)), "blank"),
        (png("dot.png", dot), "only a dot"),
        (png("black.png", PIL.Image.new("L", (280, 280), 0)), "blank"),
        (
            png("huge.png", PIL.Image.new("1", (MAX_SIDE * 2, MAX_SIDE * 2), 1)),
            f"at most {MAX_SIDE}x{MAX_SIDE}",
        ),
        (png("clear.png", PIL.Image.new("RGBA", (280, 280), (0, 0, 0, 0))), "blank"),
        (
            png("unit.tif", PIL.Image.fromarray(np.asarray(dot, dtype=np.float32) / 255)),
            "scaled to 0-1",
        ),
        (handle_file(str(tmp_path / "notes.txt")), "notes.txt is not an image"),
        ({"background": None, "layers": [], "composite": None}, "nothing drawn"),
        (
            str(digit_files[2]),
            "handle_file",
        ),  # a bare path would name a file on the server: refused
    ]
    seven = handle_file(str(digit_files[7]))
    for value, message in bad:
        with pytest.raises(AppError, match=message):
            client.predict(value, seven, api_name="/compare")
    ok = client.predict(handle_file(str(digit_files[2])), seven, api_name="/compare")
    assert set(ok["models"]) and all(0 <= e["p_leq"] <= 1 for e in ok["models"].values())


def test_an_oversize_upload_is_refused_and_the_server_limits_are_set(
    served_app, client, digit_files, tmp_path
):
    app, url = served_app
    limit = app.MAX_FILE_SIZE
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (limit + 1))
    with big.open("rb") as f:
        answer = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.png", f)}, timeout=60)
    assert answer.status_code == 413 and f"maximum allowed size of {limit} bytes" in answer.text
    with pytest.raises(
        ValueError, match="exceeds the maximum file size"
    ):  # gradio_client checks first
        client.predict(handle_file(str(big)), handle_file(str(digit_files[7])), api_name="/compare")
    assert (
        app.demo._queue.max_size == app.QUEUE_SIZE
        and app.demo.delete_cache == (app.CACHE_SECONDS,) * 2
    )
    assert client.predict(
        handle_file(str(digit_files[2])), handle_file(str(digit_files[7])), api_name="/compare"
    )


def test_100_concurrent_requests_all_succeed(served_app, client, digit_files):
    two, seven = handle_file(str(digit_files[2])), handle_file(str(digit_files[7]))
    expected = {
        True: client.predict(two, seven, api_name="/compare"),
        False: client.predict(seven, two, api_name="/compare"),
    }
    # A pool of 8 threads, one Client each (a client's jobs share one event stream, and its own
    # bookkeeping races when one client has many jobs in flight): 100 requests, at most 8 at once.
    local = threading.local()

    def request(up: bool):
        if not hasattr(local, "client"):
            local.client = Client(served_app[1], verbose=False)
        return up, local.client.predict(
            *((two, seven) if up else (seven, two)), api_name="/compare"
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(request, [i % 2 == 0 for i in range(100)]))
    assert len(results) == 100
    for up, result in results:
        assert result == expected[up]


# --- the guard: "not a digit", "unsure, 1 or 7" (digitpair/guard/__init__.py)
# ---------------------------


def paper_drawing(draw) -> PIL.Image.Image:
    """A 280x280 white canvas, `draw(ImageDraw)` on it in black, as the pads' paper."""
    image = PIL.Image.new("L", (280, 280), 255)
    draw(PIL.ImageDraw.Draw(image))
    return image


def pen_strokes(draw, strokes, width: int = 24) -> None:
    """Strokes of the pad's round 24 px brush (unit-square points on the 280 px paper)."""
    for stroke in strokes:
        points = [(40 + 200 * x, 40 + 200 * y) for x, y in stroke]
        draw.line(points, fill=0, width=width, joint="curve")
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=0)


LETTER_A = [[(0.15, 0.95), (0.5, 0.05), (0.85, 0.95)], [(0.3, 0.6), (0.7, 0.6)]]
LETTER_K = [[(0.2, 0.05), (0.2, 0.95)], [(0.8, 0.05), (0.2, 0.55), (0.8, 0.95)]]


def crossed_out(mnist) -> PIL.Image.Image:
    """A 3, struck out with an X of the pad's brush."""
    image = drawing(first_of(mnist, 3))
    pen_strokes(PIL.ImageDraw.Draw(image), [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)]])
    return image


# A dab of the app's 24 px brush (just over preprocess's smallest drawing), a blot, a scribble back
# and forth over a patch (as one scribbles something out), drawn letters K and A and a crossed-out
# digit.
NON_DIGITS = {
    "dot": lambda mnist: paper_drawing(lambda d: d.ellipse((127, 127, 153, 153), fill=0)),
    "blot": lambda mnist: paper_drawing(
        lambda d: d.polygon([(80, 90), (200, 70), (220, 180), (120, 220), (70, 160)], fill=0)
    ),
    "scribble": lambda mnist: paper_drawing(
        lambda d: d.line(
            [(60 + 160 * (i % 2), 80 + 12 * i) for i in range(10)], fill=0, width=24, joint="curve"
        )
    ),
    "letter K": lambda mnist: paper_drawing(lambda d: pen_strokes(d, LETTER_K)),
    "letter A": lambda mnist: paper_drawing(lambda d: pen_strokes(d, LETTER_A)),
    "crossed-out digit": crossed_out,
}


def with_the_pen(image: PIL.Image.Image) -> PIL.Image.Image:
    """A scanned digit's drawing as the pad's brush paints it: crisp ink, strokes 8 px wider."""
    return image.filter(PIL.ImageFilter.MinFilter(9)).point(lambda v: 0 if v < 128 else 255)


def judging_by(loaded: NetworkSet, limits: Limits) -> NetworkSet:
    return dataclasses.replace(loaded, judge=guard.Judge(loaded.judge.guard, limits))


def test_every_card_and_the_headline_say_what_is_doubted(weights, mnist):
    loaded = load_set(str(weights))
    two, seven = drawing(first_of(mnist, 2)), drawing(first_of(mnist, 7))
    unsure = judging_by(loaded, Limits(max_odds=100.0, weight=0.0, min_agreement=2.0))  # doubted
    view = page_view(unsure, two, seven)
    assert view.headline.startswith("**The first drawing: unsure, ")
    assert "; the second drawing: unsure, " in view.headline
    for name, card in cards_of(view.cards).items():
        assert "P(first ≤ second) = " in card  # the numbers stay
        if name in DIGIT_HEADS:
            assert re.search(
                r"reads first: <b>\d</b> \(\d+%\) or <b>\d</b> \(\d+%\), second: <b>\d</b>", card
            ), name
        else:
            assert "the guard says the first drawing: unsure, " in card, name
    odd = judging_by(loaded, Limits(max_odds=-100.0, weight=0.0, min_agreement=0.0))  # no digit
    view = page_view(odd, two, seven)
    assert view.headline.startswith(
        "**The first drawing: not a digit; the second drawing: not a "
        "digit.** Read as digits anyway: **"
    )
    for name, card in cards_of(view.cards).items():
        if name in DIGIT_HEADS:
            assert card.count("not a digit?") == 2
        else:
            assert "the guard says the first drawing" in card
    # The API takes the same path and says the same words.
    said = compare(odd, two, seven).to_json()["drawings"]
    assert [said[box]["judgement"] for box in ("first", "second")] == ["not a digit", "not a digit"]
    examples = page_examples()  # an example is a known pair of digits: never doubted
    view = page_view(odd, str(examples[0].first), str(examples[0].second), tuple(examples))
    assert view.headline.startswith("Example 2 and 7") and "not a digit" not in view.cards


@pytest.mark.parametrize("damage", ["missing", "damaged", "for other networks"])
def test_without_a_whole_guard_for_these_networks_drawings_are_not_judged(
    weights, tmp_path, mnist, damage, caplog
):
    folder = shutil.copytree(weights, tmp_path / "weights")
    if damage == "missing":
        shutil.rmtree(folder / guard.FOLDER)
    elif damage == "damaged":
        (folder / guard.FOLDER / guard.WEIGHTS_NAME).write_bytes(b"not safetensors")
    else:
        # Weights exported after the fit.
        save_variant(build_model("simple_cnn"), "simple_cnn", folder / "simple_cnn")
    loaded = load_set(str(folder))
    assert list(loaded.models) == list(VARIANTS) and loaded.judge is None and loaded.not_judged
    assert "drawings are not judged for the ours networks" in caplog.text
    two, seven = drawing(first_of(mnist, 2)), drawing(first_of(mnist, 7))
    view = page_view(loaded, two, seven)
    assert view.headline.endswith(f"*Drawings are not judged: {loaded.not_judged}.*")
    result = compare(loaded, two, seven).to_json()
    assert result["judged"] is False and result["not_judged"] == loaded.not_judged
    for box in ("first", "second"):
        said = result["drawings"][box]
        assert said["judgement"] is None and len(said["digits"]) == 2
    assert about.guard_note(about.guard_record({"ours": loaded})) == []


@pytest.fixture(scope="module")
def served_sets():
    """The committed weights/ as the app serves them; skipped locally where there are none."""
    sets = load_sets()
    if not sets["ours"].models:
        if os.environ.get("CI"):
            pytest.fail(f"no trained model in {served.WEIGHTS_DIR}")
        pytest.skip(f"no trained model in {served.WEIGHTS_DIR}")
    return sets


def test_the_committed_guard_is_for_the_committed_weights_and_the_docs_cite_it(served_sets):
    for networks, loaded in served_sets.items():
        # After exporting new weights, run `digitpair-train fit-guard`: it fits the guard for them.
        assert loaded.judge is not None, f"weights/guard, {networks} networks: {loaded.not_judged}"
    record = about.guard_record(served_sets)
    readme = (ROOT / "README.md").read_text()
    assert f"{GUARD_BEGIN}\n{guard.rates_markdown(record)}\n{GUARD_END}" in readme
    docs = (ROOT / "docs" / "guard.md").read_text()
    assert f"{GUARD_BEGIN}\n{guard.docs_markdown(record)}\n{GUARD_END}" in docs
    assert guard.rates_markdown(record) in about.about_markdown(served_sets)


def flat(digits: dict | list | None) -> list[float]:
    """A `/compare` answer's digits ({box: [[digit, p], ...]} or [[digit, p], ...]) as one list."""
    rows = [*digits.values()] if isinstance(digits, dict) else [digits or []]
    return [float(x) for row in rows for pair in row for x in pair]


def test_the_page_serves_stacked_in_channels_last_and_says_what_the_loaded_networks_say(
    served_sets, mnist
):
    """`served.serving` (speed: benchmarks/serving.py) changes no word of answers."""
    two, seven = drawing(first_of(mnist, 2)), drawing(first_of(mnist, 7))
    pairs = [(two, seven), (seven, two), (two, NON_DIGITS["dot"](mnist))]
    for networks, answering in served_sets.items():
        layers = [m for net in answering.nets for m in net.modules()]
        convs = [m for m in layers if isinstance(m, torch.nn.Conv2d)]
        assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
        assert isinstance(answering.judge.guard.net, guard.StackedReaders)
        as_loaded = load_set(networks=networks)  # one by one, contiguous, as the weights are saved
        for name, model in answering.models.items():
            stacked = isinstance(model, StackedEnsemble)
            assert stacked == isinstance(as_loaded.models[name], Ensemble), (networks, name)
        for first, second in pairs:
            a, b = (compare(s, first, second).to_json() for s in (answering, as_loaded))
            for name, model in a["models"].items():
                assert model["p_leq"] == pytest.approx(b["models"][name]["p_leq"], abs=1e-5)
                assert model["first_is_leq"] == b["models"][name]["first_is_leq"], networks
                assert flat(model["digits"]) == pytest.approx(
                    flat(b["models"][name]["digits"]), abs=1e-5
                )
            for box, said in a["drawings"].items():
                assert said["judgement"] == b["drawings"][box]["judgement"], networks
                assert flat(said["digits"]) == pytest.approx(
                    flat(b["drawings"][box]["digits"]), abs=1e-5
                )


GUARD_BEGIN = "<!-- guard:begin (python benchmarks/guard.py --readme) -->"
GUARD_END = "<!-- guard:end -->"


# The goal names a drawn A. A is among the characters held out of the guard's fitting (its
# rates then speak for characters it never saw): this A passes the limit for both sets, as
# 74.13 % of the held-out writers' pen As do (guard.json's per_label).
@pytest.mark.parametrize("kind", list(NON_DIGITS))
def test_the_guard_says_not_a_digit_to_a_dot_a_blot_a_scribble_letters_and_a_crossed_out_digit(
    served_sets, mnist, kind
):
    two, seven = drawing(first_of(mnist, 2)), drawing(first_of(mnist, 7))
    odd = NON_DIGITS[kind](mnist)
    for networks, loaded in served_sets.items():
        assert page_view(loaded, two, seven).headline.startswith("**first ≤ second**"), (
            networks
        )  # no doubt
        penned = page_view(loaded, with_the_pen(two), with_the_pen(seven))
        assert penned.headline.startswith("**first ≤ second**"), (
            networks
        )  # nor drawn with the pad's pen
        view = page_view(loaded, two, odd)
        said = "**The second drawing: not a digit.** Read as digits anyway"
        assert view.headline.startswith(said), networks
        for name, card in cards_of(view.cards).items():
            if name in DIGIT_HEADS:
                assert "second: not a digit?" in card
            else:
                assert "the guard says the second drawing: not a digit" in card
        said = compare(loaded, two, odd).to_json()["drawings"]
        judgements = (said["first"]["judgement"], said["second"]["judgement"])
        assert judgements == ("digit", "not a digit"), networks


def test_the_app_starts_where_python_has_no_fcntl():
    """Windows' Python has no fcntl: importing the page must not need it (the study folder's lock,
    which does, takes another path there)."""
    code = "import sys; sys.modules['fcntl'] = None; import app; print(sorted(app.SETS))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ours" in done.stdout

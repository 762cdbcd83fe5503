"""digitpair/abstain.py: the evidence about a drawing, the limits on it, and the statistics file
that ties them to the networks they were chosen for (benchmarks/not_a_digit.py writes both files)."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import safetensors.numpy
import torch

from digitpair import abstain, build_model
from digitpair import app_logic as logic
from digitpair.models import read_digits


def test_count_pieces():
    ink = np.zeros((3, 6, 6), bool)
    ink[0, 1, 1] = ink[0, 2, 2] = True                      # diagonal neighbours: one piece
    ink[1, 0, :] = ink[1, 2, :] = ink[1, 5, 5] = True        # two bars and a dot
    assert abstain.count_pieces(ink).tolist() == [1, 3, 0]


def pooled(mnist, n: int) -> tuple[torch.Tensor, np.ndarray]:
    """The first n MNIST training digits as the networks train on them (14x14), and their labels."""
    return torch.nn.functional.avg_pool2d(mnist.train_images[:n].float()[:, None], 2)[:, 0], mnist.train_labels[:n].numpy()


def test_shapes_explain_the_digits_they_were_fitted_on(mnist):
    digits, _ = pooled(mnist, 500)
    shapes = abstain.Shapes.fit(digits, 20)
    again = abstain.Shapes.fit(digits, 20)
    assert np.array_equal(shapes.components, again.components)   # signs fixed: a refit writes the same numbers
    assert np.allclose(shapes.components @ shapes.components.T, np.eye(20), atol=1e-9)
    mix = torch.from_numpy((shapes.mean + 0.5 * shapes.components[3]) * 255).reshape(1, 14, 14)
    assert shapes.unexplained(mix)[0] == pytest.approx(0, abs=1e-9)
    noise = torch.rand(50, 14, 14, generator=torch.Generator().manual_seed(0)) * 255
    assert np.median(shapes.unexplained(noise)) > 5 * np.median(shapes.unexplained(digits))


def test_gaussians_measure_the_mahalanobis_distance_to_a_digit():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 50)
    features = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4)) + 3 * labels[:, None]
    g = abstain.Gaussians.fit(features, labels)
    assert np.allclose(g.distance(g.means, np.arange(10)), 0)
    centred = features - g.means[labels]
    covariance = centred.T @ centred / 500
    covariance += abstain.RIDGE * np.trace(covariance) / 4 * np.eye(4)
    d = features[:3] - g.means[[5, 5, 5]]
    assert np.allclose(g.distance(features[:3], np.array([5, 5, 5])), np.diag(d @ np.linalg.inv(covariance) @ d.T))
    # In units of the training digits' own spread: rescaling every feature changes no distance.
    scaled = abstain.Gaussians.fit(features * 1000, labels)
    assert np.allclose(scaled.distance(features[:20] * 1000, labels[:20]), g.distance(features[:20], labels[:20]))


def neutral_evidence(n: int, **change) -> abstain.Evidence:
    """n drawings whose evidence passes no limit of LIMITS_AT unless `change`d."""
    values = dict(confidence=0.9, pair_share=0.95, least_confidence=0.8, disagreement=0.0, energy=-10.0,
                  neighbour_distance=0.05, feature_distance=10.0, logit_distance=5.0, solid=0.1, width=1.5, pieces=1, unexplained=1.0, unlike=1.0,
                  odds=-5.0)
    return abstain.Evidence(**{k: np.full(n, change.get(k, v)) for k, v in values.items()}, digits=np.zeros((n, 2), int))


LIMITS_AT = {"min_confidence": 0.5, "min_least_confidence": 0.4, "max_disagreement": 0.5, "max_energy": -5.0,
             "max_neighbour_distance": 0.2, "max_feature_distance": 50.0, "max_logit_distance": 20.0, "max_solid": 0.3, "max_width": 3.0,
             "max_pieces": 2, "max_unexplained": 4.0, "max_unlike": 4.0, "max_odds": 0.0}


@pytest.mark.parametrize("limit", abstain.LIMITS)
def test_each_limit_flags_its_side_and_the_pair_share_words_a_doubt(limit):
    assert set(LIMITS_AT) == set(abstain.LIMITS)
    rule = abstain.Rule(LIMITS_AT, min_pair_share=0.8, stats=None)
    field, beyond = limit[4:], LIMITS_AT[limit] + (-0.1 if limit.startswith("min_") else 1)
    assert abstain.judge(rule, neutral_evidence(1)).tolist() == [abstain.DIGIT]
    two_digits, spread = neutral_evidence(1, **{field: beyond}), neutral_evidence(1, **{field: beyond, "pair_share": 0.5})
    if limit in abstain.DOUBTS:   # the readers unsure: "could be 1 or 7" where two digits hold most
        assert abstain.judge(rule, two_digits).tolist() == [abstain.UNSURE]
    else:
        assert abstain.judge(rule, two_digits).tolist() == [abstain.NOT_A_DIGIT]
    assert abstain.judge(rule, spread).tolist() == [abstain.NOT_A_DIGIT]
    others = abstain.Rule({k: v for k, v in LIMITS_AT.items() if k != limit}, 0.8, None)
    assert abstain.judge(others, two_digits).tolist() == [abstain.DIGIT]   # a limit left out is not applied


def test_the_odds_are_a_weighted_l2_logistic_regression_on_the_terms_and_their_products():
    """Against scikit-learn's LogisticRegression on the same standardised, expanded terms (its C =
    1 / l2 with the weights summing to 1), folded back to raw terms; and the odds tell two kinds apart."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 600
    non_digit = rng.random(n) < 0.3
    terms = rng.normal(size=(n, 3)) * [1, 10, 0.1] + non_digit[:, None] * [1.5, -8, 0] + [0, 50, 3]
    terms[:, 2] += 0.1 * non_digit * terms[:, 0] ** 2     # a kind told apart by a product of terms
    weight = np.where(non_digit, 2.0, 1.0)
    odds = abstain.Odds.fit(terms, non_digit, weight, l2=1e-3)
    q = abstain.Odds.expand((terms - terms.mean(0)) / terms.std(0))
    q = (q - q.mean(0)) / q.std(0)
    ref = LogisticRegression(C=1e3, tol=1e-10, max_iter=10000).fit(q, non_digit, sample_weight=weight / weight.sum())
    assert np.allclose(odds.score(terms), ref.decision_function(q), atol=1e-4)
    assert odds.score(terms)[non_digit].mean() > 2 > -2 > odds.score(terms)[~non_digit].mean()
    assert abstain.Odds.expand(np.array([[2.0, 3.0]])).tolist() == [[2, 3, 4, 6, 9]]


@pytest.fixture(scope="module")
def fitted(weights, mnist):
    """The untrained ours set of `weights`, its readers' Stats fitted on 300 training digits, with
    odds fitted to tell those digits from noise."""
    readers = logic.readers(logic.load_models(str(weights)).models)
    digits, labels = pooled(mnist, 300)
    stats = abstain.fit_stats(readers, digits, labels, 5, 3)
    noise = torch.rand(100, 14, 14, generator=torch.Generator().manual_seed(1)) * 255
    x = torch.cat([digits, noise])[:, None].expand(-1, 2, -1, -1)
    ev = abstain.evidence(x, {n: read_digits(m, x) for n, m in readers.items()}, stats)
    assert np.isnan(ev.odds).all()   # no odds fitted yet: measured as not known, flagging nothing
    non_digit = np.tile(np.arange(400) >= 300, 2)
    odds = abstain.Odds.fit(abstain.Odds.terms(ev), non_digit, np.ones(800), l2=1e-3)
    return readers, dataclasses.replace(stats, odds=odds)


def write(tmp_path, readers, stats, fingerprints=None, leave_out="") -> tuple[dict, object]:
    fingerprints = fingerprints or {"ours": {n: abstain.fingerprint(m) for n, m in readers.items()}}
    arrays = {k: v for k, v in abstain.stats_arrays({"ours": stats}).items() if not (leave_out and leave_out in k)}
    data = safetensors.numpy.save(arrays, metadata={"fingerprints": json.dumps(fingerprints)})
    (tmp_path / "not_a_digit.safetensors").write_bytes(data)
    rules = {"stats": {"file": "not_a_digit.safetensors", "sha256": hashlib.sha256(data).hexdigest()},
             "sets": {"ours": {"fingerprints": {n: abstain.fingerprint(m) for n, m in readers.items()},
                               "rule": {"limits": {"min_confidence": 0.4}, "min_pair_share": 0.6}}}}
    return rules, tmp_path / "not_a_digit.safetensors"


def test_a_rule_serves_only_the_networks_and_the_statistics_it_was_chosen_with(fitted, tmp_path):
    readers, stats = fitted
    rules, path = write(tmp_path, readers, stats)
    rule, why = abstain.rule_for(rules, "ours", readers, path)
    assert why == "" and rule.limits == {"min_confidence": 0.4} and rule.min_pair_share == 0.6
    back = rule.stats.hidden["unshared_aux"][0][1]   # float32 on disk: the same Gaussians to 1e-6
    assert np.allclose(back.precision, stats.hidden["unshared_aux"][0][1].precision, rtol=1e-5, atol=1e-6)
    for reader, boxes in stats.banks.items():        # 8-bit on disk: every bank, each box's own
        for box, bank in enumerate(boxes):
            assert np.abs(rule.stats.banks[reader][box] - bank).max() < 2 / abstain.BANK_SCALE
    assert not np.array_equal(stats.banks["unshared_aux"][0], stats.banks["unshared_aux"][1])   # an encoder per box
    for field in ("mean", "scale", "weights", "bias"):           # float64 on disk: the odds exactly
        assert np.array_equal(getattr(rule.stats.odds, field), getattr(stats.odds, field))
    rule, why = abstain.rule_for(rules, "ours", {**readers, "simple_cnn": build_model("simple_cnn")}, path)
    assert rule is None and "chosen for other 'ours' networks" in why and "python benchmarks/not_a_digit.py" in why
    assert abstain.rule_for(rules, "report", readers, path)[0] is None

    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 1
    path.write_bytes(bytes(damaged))
    rule, why = abstain.rule_for(rules, "ours", readers, path)
    assert rule is None and "is not the file not_a_digit.json was written with" in why
    path.unlink()
    rule, why = abstain.rule_for(rules, "ours", readers, path)
    assert rule is None and "not_a_digit.safetensors is missing" in why
    # A whole file, recorded as such, but fitted for other networks: its metadata says so.
    rules, path = write(tmp_path, readers, stats, {"ours": {"simple_cnn": "0" * 16}})
    rule, why = abstain.rule_for(rules, "ours", readers, path)
    assert rule is None and "fitted for other 'ours' networks" in why
    # A whole file of the right networks by an older benchmark, without the banks: named, not a KeyError.
    rules, path = write(tmp_path, readers, stats, leave_out="/bank/")
    rule, why = abstain.rule_for(rules, "ours", readers, path)
    assert rule is None and "has no ours/" in why and "rerun python benchmarks/not_a_digit.py" in why
    # Nor without the odds, when the rule bounds them.
    rules, path = write(tmp_path, readers, stats, leave_out="/odds/")
    assert abstain.rule_for(rules, "ours", readers, path)[0] is not None   # the rule has no max_odds
    rules["sets"]["ours"]["rule"]["limits"]["max_odds"] = 0.0
    rule, why = abstain.rule_for(rules, "ours", readers, path)
    assert rule is None and "has no odds for the 'ours' networks" in why


def test_a_drawing_s_evidence_is_its_own(fitted, mnist):
    """The same drawing, whatever is in the other box and whatever else is judged with it, gets
    the same evidence: the page's pair of two and the benchmark's batches of thousands agree."""
    readers, stats = fitted
    digits, _ = pooled(mnist, 8)
    alone = torch.stack([digits[0], digits[1]])[None]
    batch = torch.stack([digits[[0, 2, 3, 4]], digits[[5, 1, 6, 7]]], 1)
    evidence = lambda x: abstain.evidence(x, {n: read_digits(m, x) for n, m in readers.items()}, stats)
    one, many = evidence(alone), evidence(batch)
    for field in abstain.Evidence.__dataclass_fields__:
        a, b = getattr(one, field), getattr(many, field)
        assert np.isfinite(a).all(), field
        assert np.allclose(a[[0, 1]], b[[0, 5]], rtol=1e-4, atol=1e-6), field   # box-major: first boxes, then second


def test_the_neighbour_distance_is_to_the_kth_nearest_training_digit(fitted, mnist, tmp_path):
    """Against a brute-force cosine distance, each box against its own encoder's bank; training
    digits (in the bank) lie nearer than unseen ones, unseen digits nearer than noise; and the
    8-bit banks the app loads give the float banks' distances to 2e-3."""
    readers, stats = fitted
    digits, _ = pooled(mnist, 400)
    noise = torch.rand(100, 14, 14, generator=torch.Generator().manual_seed(0)) * 255
    x = torch.stack([torch.cat([digits, noise]), torch.cat([digits, noise]).flip(0)], 1)   # box 1: reversed
    reads = {n: read_digits(m, x) for n, m in readers.items()}
    trunks = {n: abstain.box_major(f.trunk[:1])[0] for n, f in reads.items()}
    got = abstain.neighbour_distance(trunks, stats.banks, chunk=64)   # in chunks of 64: as in one
    brute = []
    for n, t in trunks.items():
        cosine = [t[box * 500:(box + 1) * 500] @ stats.banks[n][box].T / np.linalg.norm(t[box * 500:(box + 1) * 500], axis=1)[:, None]
                  for box in range(2)]
        brute.append(1 - np.sort(np.concatenate(cosine), 1)[:, -abstain.NEIGHBOURS])
    assert np.allclose(got, np.mean(brute, 0), atol=1e-9)
    first = got[:500]   # box 0: the 300 training digits, 100 unseen ones, 100 noise images
    assert first[:300].mean() < first[300:400].mean() < first[400:].min()
    rules, path = write(tmp_path, readers, stats)
    rule, _ = abstain.rule_for(rules, "ours", readers, path)
    assert np.abs(abstain.neighbour_distance(trunks, rule.stats.banks) - got).max() < 2e-3

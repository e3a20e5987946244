"""stn_core.multi: the several-digit tasks' data and models, their cards, training and evaluation."""

import json
import re

import numpy as np
import pytest
import torch

from stn_core import timelapse
from stn_core.cards import CardError, ModelCard, model_slug
from stn_core.checkpoints import load, save_model
from stn_core.evaluate import main as evaluate_main
from stn_core.multi import (
    MULTI_MODELS,
    TASKS,
    MultiConfig,
    build_multi_model,
    digit_sum,
    draw_task,
    fixed_task_test_set,
    initial_crops,
    sequence_layout,
    task_errors,
)
from stn_core.train import parse_args, train


@pytest.fixture(scope="module")
def digits(sample_digits):
    images, labels = sample_digits
    return images[:200], labels[:200]


# -- data --------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", list(TASKS))
def test_draws_are_deterministic_per_seed(digits, task):
    first = draw_task(task, *digits, 16, torch.Generator().manual_seed(3))
    again = draw_task(task, *digits, 16, torch.Generator().manual_seed(3))
    other = draw_task(task, *digits, 16, torch.Generator().manual_seed(4))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_addition_channels_hold_the_two_digits_and_the_label_is_their_sum(digits):
    images, labels = digits
    inputs, sums = draw_task("addition", images, labels, 64, torch.Generator().manual_seed(0))
    assert inputs.shape == (64, 2, 42, 42) and sums.shape == (64,)
    assert inputs.min() >= 0 and inputs.max() <= 1 and (inputs.flatten(2).max(2).values > 0.5).all()  # ink in each channel
    assert sums.min() >= 0 and sums.max() <= 18
    # Known answer: the same picks, distorted as the regime draws them.
    generator = torch.Generator().manual_seed(0)
    picks = torch.randint(0, images.shape[0], (64, 2), generator=generator)
    assert torch.equal(sums, labels[picks].sum(1))


def test_sequence_digits_sit_on_the_canvas_left_to_right_in_their_places(digits):
    images, labels = digits
    layout = sequence_layout(500, torch.Generator().manual_seed(1))
    x, y = layout[..., 0], layout[..., 1]
    assert x.min() >= 0 and y.min() >= 0 and (x + 28).max() <= 100 and (y + 28).max() <= 100
    gaps = x[:, 1:] - x[:, :-1] - 28
    assert gaps.min() >= 0 and gaps.max() <= TASKS["sequence"].max_gap
    inputs, targets = draw_task("sequence", images, labels, 32, torch.Generator().manual_seed(2))
    assert inputs.shape == (32, 1, 100, 100) and targets.shape == (32, 3)
    # Known answer: each digit is pasted whole at its place (clutter can only add ink).
    generator = torch.Generator().manual_seed(2)
    picks = torch.randint(0, images.shape[0], (32, 3), generator=generator)
    places = sequence_layout(32, generator)
    assert torch.equal(targets, labels[picks])
    for i in range(32):
        for k in range(3):
            px, py = places[i, k].tolist()
            patch = inputs[i, 0, py : py + 28, px : px + 28]
            assert (patch >= images[picks[i, k], 0] - 1e-6).all()


@pytest.mark.parametrize("task", list(TASKS))
def test_fixed_test_sets_use_every_test_digit_once_per_position_and_never_change(digits, task):
    images, labels = digits
    inputs, targets = fixed_task_test_set(task, images, labels)
    again, _ = fixed_task_test_set(task, images, labels)
    assert inputs.shape[0] == images.shape[0] and torch.equal(inputs, again)
    if task == "sequence":
        assert torch.equal(targets[:, 0], labels) and sorted(targets[:, 1].tolist()) == sorted(labels.tolist())


# -- models ------------------------------------------------------------------------------------

SHAPES = {"addition": ((3, 2, 42, 42), (3, 19)), "sequence": ((3, 1, 100, 100), (3, 3, 10))}
MODELS = [("addition", "parallel-st"), ("addition", "cnn"), ("addition", "fcn")]
MODELS += [("sequence", "rnn-spn"), ("sequence", "glimpse-rnn"), ("sequence", "cnn")]
SUM_HEADS = [("addition", model, "digit-sum") for model in MULTI_MODELS["addition"]]


@pytest.mark.parametrize("task, model, head", [(task, model, "classes") for task, model in MODELS] + SUM_HEADS)
def test_models_keep_the_interfaces(task, model, head):
    inputs, logits = SHAPES[task]
    net = build_multi_model(MultiConfig(task, model, head=head))
    out = net.forward_details(torch.rand(inputs))
    assert out.logits.shape == logits and torch.equal(net(torch.zeros(inputs)), net.forward_details(torch.zeros(inputs)).logits)
    if out.theta is not None:
        k = MultiConfig(task, model).glimpses
        channels = inputs[1]
        assert out.theta.shape == (3, k, 6) and out.grids.shape[:2] == (3, k) and out.glimpses.shape[:3] == (3, k, channels)


def test_a_digit_sum_head_gives_the_distribution_of_the_sum_of_its_two_readings():
    # Known answer: digits 2 or 3 (even odds) and surely 4 -> sum 6 or 7, even odds.
    logits = torch.full((1, 2, 10), -torch.inf)
    logits[0, 0, [2, 3]] = 0.0
    logits[0, 1, 4] = 5.0
    expected = torch.zeros(19)
    expected[[6, 7]] = 0.5
    assert torch.allclose(digit_sum(logits).exp()[0], expected)
    # Against the sum over all 100 pairs, written out.
    torch.manual_seed(0)
    logits = torch.randn(4, 2, 10, dtype=torch.float64) * 3
    p, q = logits.softmax(-1).unbind(1)
    brute = torch.stack([sum(p[:, a] * q[:, s - a] for a in range(10) if 0 <= s - a <= 9) for s in range(19)], 1)
    assert torch.allclose(digit_sum(logits).exp(), brute)
    assert torch.autograd.gradcheck(digit_sum, (logits.requires_grad_(),))
    model = build_multi_model(MultiConfig("addition", "parallel-st", head="digit-sum"))
    out = model.forward_details(torch.rand(3, 2, 42, 42))
    assert out.digits.shape == (3, 2, 10) and torch.allclose(out.logits, digit_sum(out.digits))
    with pytest.raises(ValueError, match=r"expected digit logits of shape \(N, 2, 10\), got \(3, 19\)"):
        digit_sum(torch.zeros(3, 19))


def test_a_new_recurrent_models_first_glimpses_are_the_documented_crops():
    for model in ("rnn-spn", "glimpse-rnn"):
        net = build_multi_model(MultiConfig("sequence", model, crop_scale=0.3))
        theta = net.forward_details(torch.rand(2, 1, 100, 100)).theta
        assert torch.allclose(theta, initial_crops(3, 0.3).expand(2, -1, -1))
    crops = initial_crops(3, 0.3)
    assert crops[:, 2].tolist() == pytest.approx([-2 / 3, 0.0, 2 / 3]) and (crops[:, 0] == 0.3).all()


def test_a_new_parallel_transformer_starts_at_the_identity():
    net = build_multi_model(MultiConfig("addition", "parallel-st"))
    x = torch.rand(2, 2, 42, 42)
    out = net.forward_details(x)
    assert torch.allclose(out.theta, torch.tensor([1.0, 0, 0, 0, 1, 0]).expand(2, 2, -1))
    assert torch.allclose(out.glimpses[:, 0], x, atol=1e-5)


def test_gradients_flow_through_one_recurrent_step():
    torch.manual_seed(0)
    net = build_multi_model(MultiConfig("sequence", "glimpse-rnn", hidden=8, glimpse_size=16)).double()
    x = torch.rand(1, 1, 100, 100, dtype=torch.float64)
    state = torch.rand(1, 8, dtype=torch.float64, requires_grad=True)
    context = net.encode(net.encoder(x)).detach()
    glimpse = torch.rand(1, 1, 16, 16, dtype=torch.float64)

    def step(state):
        inputs = torch.cat([context, net.glimpse_encode(net.glimpse_encoder(glimpse))], 1)
        new_state = net.gru(inputs, state)
        theta = net.regressor(new_state) + net.crops[0]
        # Off the zero start, so that theta depends on the state.
        return net.affine.grid(theta + new_state[:, :6], 4)

    assert torch.autograd.gradcheck(step, (state,), eps=1e-6, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("task, model", [("addition", "parallel-st"), ("sequence", "glimpse-rnn")])
def test_a_short_training_run_lowers_the_loss(digits, task, model):
    torch.manual_seed(0)
    images, labels = digits
    net = build_multi_model(MultiConfig(task, model, hidden=64))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    inputs, targets = draw_task(task, images, labels, 64, generator)
    losses = []
    for _ in range(25):  # the same batch: the loss must fall
        logits = net(inputs)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown task 'division'"):
        MultiConfig("division", "cnn")
    with pytest.raises(ValueError, match="'rnn-spn' is not a addition model"):
        MultiConfig("addition", "rnn-spn")
    with pytest.raises(ValueError, match="glimpse_size must be an integer from 16 to 100, got 8"):
        MultiConfig("sequence", "rnn-spn", glimpse_size=8)
    with pytest.raises(ValueError, match="head must be one of classes, digit-sum, got 'product'"):
        MultiConfig("addition", "cnn", head="product")
    with pytest.raises(ValueError, match="head 'digit-sum' is for addition models only, got a sequence cnn"):
        MultiConfig("sequence", "cnn", head="digit-sum")
    with pytest.raises(ValueError, match="transformers must be an integer from 1 to 4, got 9"):
        MultiConfig("addition", "parallel-st", transformers=9)
    with pytest.raises(ValueError, match=r"expected sequence inputs of shape \(N, 1, 100, 100\), got \(2, 1, 42, 42\)"):
        build_multi_model(MultiConfig("sequence", "cnn"))(torch.rand(2, 1, 42, 42))


# -- cards, loading, training and evaluation of several-digit models -----------------------------


@pytest.mark.parametrize(
    "config, slug, label",
    [
        (MultiConfig("addition", "parallel-st"), "addition-2st-fcn", "2×ST-FCN"),
        (MultiConfig("addition", "parallel-st", transformers=1), "addition-1st-fcn", "ST-FCN"),
        (MultiConfig("addition", "fcn"), "addition-fcn", "FCN"),
        (MultiConfig("addition", "parallel-st", head="digit-sum"), "addition-2st-fcn-sum", "2×ST-FCN (digit-sum head)"),
        (MultiConfig("sequence", "rnn-spn", hidden=32), "sequence-rnn-spn", "RNN-SPN"),
        (MultiConfig("sequence", "glimpse-rnn", hidden=32), "sequence-glimpse-rnn", "glimpse RNN"),
        (MultiConfig("sequence", "cnn"), "sequence-cnn", "CNN"),
    ],
)
def test_a_saved_several_digit_model_loads_with_its_task_card(tmp_path, config, slug, label):
    torch.manual_seed(0)
    model = build_multi_model(config)
    metrics = {m: 1.0 for m in config.spec.metrics}
    card = save_model(
        model, tmp_path / f"{slug}.safetensors", name=model_slug(None, config), task=config.task, test_error=metrics
    )
    loaded = load(tmp_path / f"{slug}.safetensors")
    assert (card.name, card.label, card.display_name) == (slug, label, f"{config.task} · {label}")
    assert loaded.card == card and loaded.config == config and card.regime is None
    record = json.loads((tmp_path / f"{slug}.json").read_text())
    assert record["task"] == config.task and "regime" not in record and record["architecture"] == config.to_dict()
    x = torch.rand(2, config.spec.channels, config.canvas_size, config.canvas_size)
    assert torch.equal(loaded(x), model.eval()(x))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.update(regime="RTS"), "regime: a sequence model has a task, not a regime"),
        (lambda r: r.update(task="division"), "task: unknown task 'division'"),
        (lambda r: r.update(test_error={"RTS": 1.0}), "test_error.RTS: unknown metric; expected one of digit, sequence"),
        (lambda r: r.update(angle_error={"0": 1.0}), "angle_error: only single-digit models have an angle curve"),
        (lambda r: r["architecture"].update(model="parallel-st"), "'parallel-st' is not a sequence model"),
        (lambda r: r["architecture"].update(crop="big"), "architecture.crop: unknown field"),
        (lambda r: r["architecture"].update(task="addition"), "architecture must be a MultiConfig of task 'sequence'"),
    ],
)
def test_a_bad_task_card_is_refused_naming_the_field(change, message):
    config = MultiConfig("sequence", "cnn")
    record = ModelCard("sequence-cnn", None, config, 10, "0" * 64, {"digit": 1.0, "sequence": 3.0}, task="sequence").to_dict()
    change(record)
    with pytest.raises(CardError, match=re.escape(message)):
        ModelCard.from_dict(record)


@pytest.mark.slow
def test_training_a_task_model_writes_its_card_and_evaluate_prints_the_published_number(tmp_path, mnist_dir, capsys):
    out = tmp_path / "run"
    argv = ["--task", "addition", "--model", "parallel-st", "--transformers", "1", "--epochs", "1", "--batch-size", "32"]
    argv += ["--train-subset", "128", "--test-subset", "64", "--data-dir", str(mnist_dir), "--out", str(out)]
    card = train(parse_args(argv))
    assert card.name == "addition-1st-fcn" and card.task == "addition" and set(card.test_error) == {"sum"}
    assert card.training.loc_lr == card.training.lr and card.training.images_seen == 128
    log = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert log["test_errors"] == card.test_error
    assert evaluate_main([str(out / "addition-1st-fcn.safetensors"), "--data-dir", str(mnist_dir)]) == 0
    printed = capsys.readouterr().out
    assert "| task | model | error % (ours) | published |" in printed
    assert re.search(r"\| addition \| ST-FCN \| \d+\.\d\d sum \| 18\.5 \|", printed)


@pytest.mark.slow
def test_a_recurrent_models_timelapse_records_every_glimpse_of_fixed_test_canvases(tmp_path, mnist_dir):
    out = tmp_path / "run"
    argv = ["--task", "sequence", "--model", "glimpse-rnn", "--epochs", "1", "--batch-size", "16", "--timelapse-every", "2"]
    argv += ["--train-subset", "64", "--test-subset", "20", "--data-dir", str(mnist_dir), "--out", str(out)]
    train(parse_args(argv))
    lapse = timelapse.load(out / "timelapse.npz")
    assert lapse.steps.tolist() == [0, 2, 4]
    assert lapse.theta.shape == (3, 16, 3, 6) and lapse.warped.shape == (3, 16, 3, 28, 28)
    assert lapse.canvases.shape == (16, 100, 100) and lapse.labels.shape == (16, 3)
    # frame 0 is the untrained model: its glimpses are exactly the documented crops
    assert np.allclose(lapse.theta[0], initial_crops(3, 0.3).numpy()[None], atol=1e-6)


def test_task_options_are_checked_by_the_training_command():
    with pytest.raises(SystemExit):
        parse_args(["--task", "sequence", "--model", "st-cnn"])  # a single-digit model
    args = parse_args(["--task", "sequence", "--model", "rnn-spn"])
    assert args.regime is None and args.transform is None and args.transformers is None and args.name == "sequence-rnn-spn"


def test_task_errors_count_each_digit_and_each_whole_sequence():
    class Fixed(torch.nn.Module):  # reads 0, 1, 2 for every input
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.tensor([0, 1, 2]), 10).float().expand(x.shape[0], 3, 10)

    model = Fixed()
    model.dummy = torch.nn.Parameter(torch.zeros(1))
    targets = torch.tensor([[0, 1, 2], [0, 1, 9], [5, 5, 5], [0, 1, 2]])
    errors = task_errors(model, torch.zeros(4, 1, 100, 100), targets, batch_size=3)
    assert errors == {"digit": pytest.approx(100 * 4 / 12), "sequence": 50.0}


@pytest.mark.parametrize("task, model", [(task, model) for task, models in MULTI_MODELS.items() for model in models])
def test_every_several_digit_model_fits_a_weights_file_under_10_mb(task, model):
    parameters = sum(p.numel() for p in build_multi_model(MultiConfig(task, model)).parameters())
    assert 4 * parameters < 10 * 1024 * 1024  # float32 weights: a Space then needs no Git LFS

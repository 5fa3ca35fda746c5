"""The classic zero-cost proxies (grad_norm, snip, grasp, fisher, synflow, zico) against independent
computations written here from the papers' definitions, on a tiny hand-made language model.

The references use plain torch autograd and never trainfree's metric code, and where they can they take
another route than the implementation: GraSP's Hessian is built in full instead of a Hessian-vector
product, Fisher's channel saliency is the gradient of a per-channel mask (Turner et al.'s own
formulation) instead of the sum of activation x gradient, SynFlow's sum of theta * dR/dtheta is the
forward-mode derivative d/da R(a |theta|) at a = 1 (Euler's identity), and ZiCo's mean/std over two
batches is written in closed form.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainfree.config import ScoreSettings
from trainfree.metrics import Probe, get_metric

V, D, H, B, T = 11, 5, 6, 6, 4  # vocabulary, width, FFN width, batch, sequence length
DROPOUT = 0.25  # the model trains with dropout on, as BERT does: every pass must repeat its masks
SEED = 3
NAMES = ("E", "W1", "b1", "W2", "b2", "W3", "b3", "c")  # E: the embedding, tied to the output


def _seeded(seed, fn):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn()


def toy_logits(p: dict, e: torch.Tensor, hook=None, masks=None, dropout=True) -> torch.Tensor:
    """Two residual FFN blocks over embedded tokens e (B, T, D), then logits through the tied table.

    Block 0's tanh is seen whole (B, T, H); block 1's sigmoid one position at a time (B, H), as a
    recurrent cell's steps are. ``masks`` (B, 1, H) per block multiply the activations (Fisher's masks).
    """
    a0 = torch.tanh(e @ p["W1"].T + p["b1"])
    if hook is not None:
        hook("block0", a0)
    if masks is not None:
        a0 = a0 * masks[0]
    if dropout:
        a0 = F.dropout(a0, DROPOUT, training=True)
    h = e + a0 @ p["W2"].T + p["b2"]
    steps = []
    for t in range(h.shape[1]):
        a1 = torch.sigmoid(h[:, t] @ p["W3"].T + p["b3"])
        if hook is not None:
            hook("block1", a1)
        if masks is not None:
            a1 = a1 * masks[1][:, 0]
        steps.append(a1)
    h = h + torch.stack(steps, dim=1) @ p["W2"].T  # W2 used twice: shared, like a tied matrix
    return h @ p["E"].T + p["c"]


def toy_loss(p: dict, tokens, targets, hook=None, masks=None) -> torch.Tensor:
    logits = toy_logits(p, p["E"][tokens], hook, masks)
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))


def toy_params(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    shapes = {"E": (V, D), "W1": (H, D), "b1": (H,), "W2": (D, H), "b2": (D,), "W3": (H, D), "b3": (H,),
              "c": (V,)}
    return {k: torch.randn(s, generator=g, dtype=torch.float64) * (0.8 if len(s) == 2 else 0.3)
            for k, s in shapes.items()}


class ToyLM(nn.Module):
    """The proxy protocol of trainfree's models (proxy_loss, batch_dim, synflow_output) over toy_loss."""

    batch_dim = 0

    def __init__(self, seed: int):
        super().__init__()
        self.p = nn.ParameterDict({k: nn.Parameter(v) for k, v in toy_params(seed).items()})

    def proxy_loss(self, tokens, targets, activation_hook=None):
        return toy_loss(dict(self.p), tokens, targets, hook=activation_hook)

    def synflow_output(self, tokens):
        return toy_logits(dict(self.p), torch.ones(1, tokens.shape[1], D, dtype=torch.float64), dropout=False)


class ToySpace:
    name = "toy"

    def build(self, arch, settings, device="cpu"):
        return ToyLM(settings.seed)

    def inputs(self, settings, device="cpu"):
        return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(7))

    def targets(self, settings, device="cpu"):
        return torch.roll(self.inputs(settings), -1, dims=1)


SETTINGS = ScoreSettings(seed=SEED, device="cpu")


@pytest.fixture(scope="module")
def toy():
    space = ToySpace()
    return toy_params(SEED), space.inputs(SETTINGS), space.targets(SETTINGS)


def _grads(p, tokens, targets):
    leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    loss = _seeded(SEED, lambda: toy_loss(leaves, tokens, targets))
    return dict(zip(NAMES, torch.autograd.grad(loss, [leaves[k] for k in NAMES])))


def ref_grad_norm(p, tokens, targets):  # Abdelfattah et al. 2021: sum over tensors of ||dL/dtheta||
    return sum(math.sqrt(float((g ** 2).sum())) for g in _grads(p, tokens, targets).values())


def ref_snip(p, tokens, targets):  # Lee et al. 2019: |dL/dc| for connection masks c = 1, i.e. |theta * g|
    g = _grads(p, tokens, targets)
    return sum(float((p[k] * g[k]).abs().sum()) for k in NAMES)


def ref_grasp(p, tokens, targets):  # Wang et al. 2020: S(-theta) = -theta (.) H g, the full Hessian here
    sizes = [p[k].numel() for k in NAMES]
    theta = torch.cat([p[k].reshape(-1) for k in NAMES])

    def loss_of(flat):
        parts = dict(zip(NAMES, (x.reshape(p[k].shape) for k, x in zip(NAMES, flat.split(sizes)))))
        return _seeded(SEED, lambda: toy_loss(parts, tokens, targets))

    hessian = torch.autograd.functional.hessian(loss_of, theta, vectorize=True)
    g = torch.autograd.functional.jacobian(loss_of, theta)
    return float(-(theta * (hessian @ g)).sum())


def ref_fisher(p, tokens, targets):
    # Turner et al. 2020: a mask m = 1 per (sample, channel) on each activation; the saliency of a
    # channel is 1/2 mean_n (dL/dm_nc)^2, summed over channels and activations
    masks = [torch.ones(B, 1, H, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    loss = _seeded(SEED, lambda: toy_loss(p, tokens, targets, masks=masks))
    return sum(float(0.5 * (g[:, 0] ** 2).mean(dim=0).sum()) for g in torch.autograd.grad(loss, masks))


def ref_synflow(p, tokens, targets):
    # Tanaka et al. 2020: R = 1^T f(1; |theta|), score sum theta * dR/dtheta at |theta|; that sum is the
    # derivative of R(a |theta|) in a at a = 1, here in forward mode; reported as sign(S) log(1 + |S|)
    ones = torch.ones(1, T, D, dtype=torch.float64)

    def r(a):
        return toy_logits({k: a * v.abs() for k, v in p.items()}, ones, dropout=False).sum()

    _, s = torch.func.jvp(r, (torch.tensor(1.0, dtype=torch.float64),), (torch.tensor(1.0, dtype=torch.float64),))
    s = float(s)
    return math.copysign(math.log1p(abs(s)), s)


def ref_zico(p, tokens, targets):
    # Li et al. 2023: per tensor log sum mean|g| / std(g) over batches; with two batches (population std)
    # the ratio is (|g1| + |g2|) / |g1 - g2|; entries where the two agree have std 0 and are left out
    half = B // 2
    g1, g2 = _grads(p, tokens[:half], targets[:half]), _grads(p, tokens[half:], targets[half:])
    total = 0.0
    for k in NAMES:
        diff = (g1[k] - g2[k]).abs()
        keep = diff > 0
        total += math.log(float(((g1[k].abs() + g2[k].abs())[keep] / diff[keep]).sum()))
    return total


REFERENCES = {"grad_norm": ref_grad_norm, "snip": ref_snip, "grasp": ref_grasp, "fisher": ref_fisher,
              "synflow": ref_synflow, "zico": ref_zico}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_proxy_equals_the_reference_on_a_hand_made_model(name, toy):
    value = get_metric(name)(Probe(None, ToySpace(), SETTINGS))
    expected = REFERENCES[name](*toy)
    assert expected != 0 and value == pytest.approx(expected, rel=1e-9), name


def test_the_dropout_masks_matter():
    # every pass must run under the seed: with another seed the toy's loss differs, so a proxy whose
    # passes saw different masks (GraSP's two, ZiCo's halves) would miss the references above
    p, tokens, targets = toy_params(SEED), ToySpace().inputs(SETTINGS), ToySpace().targets(SETTINGS)
    losses = [float(_seeded(seed, lambda: toy_loss(p, tokens, targets))) for seed in (SEED, SEED, 0)]
    assert losses[0] == losses[1] != pytest.approx(losses[2], rel=1e-6)


# ---- the same definitions on the tiny preset of every shipped space, through each model's own loss ----
# (float64, so that the forward-mode and reverse-mode routes agree far below the tolerance)

def _preset(space_name):
    from trainfree.spaces import get_space

    space = get_space(space_name)
    settings = space.tiny_settings().with_(dtype="float64", seed=SEED, device="cpu")
    return space, space.example(), settings


class _Loss(nn.Module):
    """forward = the wrapped model's proxy loss (or synflow output), for torch.func.functional_call."""

    def __init__(self, model, synflow=False):
        super().__init__()
        self.m, self.synflow = model, synflow

    def forward(self, tokens, targets=None):
        return self.m.synflow_output(tokens).sum() if self.synflow else self.m.proxy_loss(tokens, targets)


def _preset_grads(model, seed, tokens, targets):
    params = list(model.parameters())
    loss = _seeded(seed, lambda: model.proxy_loss(tokens, targets))
    return params, torch.autograd.grad(loss, params, allow_unused=True)


def _zeros_for_unused(params, grads):  # a weight outside the loss's graph has gradient 0
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def preset_reference(name, model, seed, tokens, targets):
    from torch.func import functional_call, grad, jvp

    params, grads = _preset_grads(model, seed, tokens, targets)
    grads = _zeros_for_unused(params, grads)
    params = [p.detach() for p in params]
    if name == "grad_norm":
        return sum(math.sqrt(float((g ** 2).sum())) for g in grads)
    if name == "snip":
        return sum(float((p * g).abs().sum()) for p, g in zip(params, grads))
    if name == "zico":
        axis = model.batch_dim
        half = tokens.shape[axis] // 2
        rows = (torch.arange(half), torch.arange(half, tokens.shape[axis]))
        g1, g2 = (_zeros_for_unused(params, _preset_grads(model, seed, tokens.index_select(axis, r),
                                                          targets.index_select(axis, r))[1]) for r in rows)
        total = 0.0
        for a, b in zip(g1, g2):
            diff = (a - b).abs()
            keep = diff > 0
            if keep.any():
                total += math.log(float(((a.abs() + b.abs())[keep] / diff[keep]).sum()))
        return total
    wrapper = _Loss(model)
    names = [n for n, _ in wrapper.named_parameters()]
    theta = dict(zip(names, (p.detach() for p in wrapper.parameters())))
    if name == "grasp":  # H g in forward-over-reverse mode
        g_dict = dict(zip(names, grads))
        loss_grad = grad(lambda ps: functional_call(wrapper, ps, (tokens, targets)))
        _, hg = _seeded(seed, lambda: jvp(loss_grad, (theta,), (g_dict,)))
        return float(-sum((theta[n] * hg[n]).sum() for n in names))
    if name == "fisher":
        return _preset_fisher(model, seed, tokens, targets)
    raise KeyError(name)


def _preset_fisher(model, seed, tokens, targets):
    """Turner et al.'s per-(sample, channel) masks on every activation the space names (docs/metrics.md:
    a cell's activation nodes, BERT's FFN GELUs, a decoder's FFN activations)."""
    masks, handles = {}, []

    def mask_for(key, a):  # one mask per activation call site, shared over its positions / steps
        if key not in masks:
            shape = (a.shape[0],) + (1,) * (a.dim() - 2) + (a.shape[-1],)
            masks[key] = torch.ones(shape, dtype=a.dtype, requires_grad=True)
        return a * masks[key]

    if hasattr(model, "encoder") and hasattr(model.layers[0], "components"):  # NAS-Bench-NLP cells
        from trainfree.spaces.nasbench_nlp import cell

        keys = []  # the order activation nodes are evaluated in, read once from a forward
        _seeded(seed, lambda: model.proxy_loss(tokens, targets, activation_hook=lambda k, a: keys.append(k)))
        order = iter(keys)
        original = dict(cell._ACT)
        cell._ACT.update({op: (lambda x, f=f: mask_for(next(order), f(x))) for op, f in original.items()})
        try:
            loss = _seeded(seed, lambda: model.proxy_loss(tokens, targets, activation_hook=lambda k, a: None))
        finally:
            cell._ACT.update(original)
    else:  # transformers: the FFN activation modules, each call its own site
        for i, layer in enumerate(model.layers):
            calls = iter(range(100))
            handles.append(layer.act.register_forward_hook(
                lambda _m, _i, a, i=i, calls=calls: mask_for(f"{i}:{next(calls)}", a)))
        try:
            loss = _seeded(seed, lambda: model.proxy_loss(tokens, targets))
        finally:
            for h in handles:
                h.remove()
    keys = list(masks)
    grads = torch.autograd.grad(loss, [masks[k] for k in keys])
    return sum(float(0.5 * (g.reshape(g.shape[0], -1) ** 2).mean(dim=0).sum()) for g in grads)


def preset_synflow(model, seed, tokens):
    from torch.func import functional_call, jvp

    wrapper = _Loss(model.double(), synflow=True)
    theta = {n: p.detach().abs() for n, p in wrapper.named_parameters()}

    def r(a):
        return functional_call(wrapper, {n: a * v for n, v in theta.items()}, (tokens,))

    one = torch.tensor(1.0, dtype=torch.float64)
    _, s = _seeded(seed, lambda: jvp(r, (one,), (one,)))
    s = float(s)
    return math.copysign(math.log1p(abs(s)), s)


PRESET_CASES = [(space, name) for space in ("nasbench-nlp", "nasbench-bert", "decoder")
                for name in ("grad_norm", "snip", "grasp", "fisher", "synflow", "zico")]


@pytest.mark.parametrize("space_name,name", PRESET_CASES)
def test_proxy_equals_the_reference_on_each_spaces_tiny_preset(space_name, name):
    space, arch, settings = _preset(space_name)
    value = get_metric(name)(Probe(arch, space, settings))
    model = space.build(arch, settings)
    tokens, targets = space.inputs(settings), space.targets(settings)
    if name == "synflow":
        expected = preset_synflow(model, settings.seed, tokens)
    else:
        expected = preset_reference(name, model, settings.seed, tokens, targets)
    assert expected != 0 and value == pytest.approx(expected, rel=1e-8), (space_name, name)

"""Contracts parametrised over the registries: a space or a metric is tested the moment it is
registered. Every space keeps the SearchSpace protocol on its example; every metric that applies to a
space is finite on the space's tiny example, deterministic, and leaves the model unchanged. What each
costs is printed by `python benchmarks/metric_costs.py --tiny --space SPACE`, not asserted here."""
import json
import math

import numpy as np
import pytest
import torch

from trainfree.errors import TrainfreeError
from trainfree.metrics import METRICS, Probe, get_metric
from trainfree.metrics.base import ALIASES
from trainfree.spaces import SPACES, get_space, space_entry, space_names
from trainfree.spaces.base import ARTEFACTS, SearchSpace


def _cases():
    return [(m.name, space) for space in space_names() for m in METRICS if m.applies_to(space)]


def _probe(space_name: str) -> Probe:
    sp = get_space(space_name)
    return Probe(sp.example(), sp, sp.tiny_settings())


@pytest.mark.parametrize("name,space", _cases())
def test_metric_contract(name, space):
    metric = get_metric(name)
    probe = _probe(space)
    before = {k: v.clone() for k, v in probe.model.state_dict().items()}
    value = metric(probe)
    assert math.isfinite(value), f"{name} gave {value} on the tiny model"
    after = probe.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), f"{name} changed the probe's weights"
    assert all(p.grad is None for p in probe.model.parameters()), f"{name} left gradients on the model"
    again = metric(_probe(space))
    assert again == value or not metric.deterministic, f"{name} is not deterministic under the same seed"


@pytest.mark.parametrize("old", sorted(ALIASES))
def test_alias_is_the_merged_metric(old):
    alias, merged = get_metric(old), get_metric(ALIASES[old])
    assert alias.name == old and alias.alias_of == merged.name
    assert (alias.fn, alias.version, alias.requires) == (merged.fn, merged.version, merged.requires)
    space = alias.spaces[0]
    assert alias(_probe(space)) == merged(_probe(space))


def test_every_metric_documents_itself():
    for m in METRICS:
        assert m.description and m.version and m.requires and m.requires <= set(ARTEFACTS)
        assert m.spaces, f"{m.name} applies to no registered space"
        assert m.fn.__doc__ and len(m.fn.__doc__.strip()) > 20


@pytest.mark.parametrize("name", space_names())
def test_space_contract(name):
    sp, entry = get_space(name), space_entry(name)
    assert isinstance(sp, SearchSpace) and sp.name == name
    # the registry's cheap metadata is the implementation's
    assert entry.provides == sp.provides and entry.sizes == tuple(sp.sizes) and entry.description == sp.description
    assert sp.provides <= set(ARTEFACTS) and "tiny" in sp.sizes
    assert set(sp.default_metrics) and all(get_metric(m).applies_to(name) for m in sp.default_metrics)
    example = sp.example()
    assert sp.arch_id(sp.from_json(sp.to_json(example))) == sp.arch_id(example)
    assert sp.arch_id(sp.parse(sp.canonical_json(example))) == sp.arch_id(example)
    rng = np.random.default_rng(3)
    drawn = sp.sample(rng)
    child = sp.mutate(drawn, rng)
    decoded = sp.decode([7] * sp.n_genes)
    for arch in (drawn, child, decoded):
        assert sp.arch_id(sp.from_json(sp.to_json(arch))) == sp.arch_id(arch)
        assert isinstance(sp.features(arch), frozenset)
    settings = sp.tiny_settings()
    sp.check(settings)
    model, inputs = sp.build(example, settings), sp.inputs(settings)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert sp.targets(settings).shape[:2] == inputs.shape[:2]
    with pytest.raises(TrainfreeError, match="dtype"):
        sp.check(settings.with_(dtype="float8"))


@pytest.mark.parametrize("name", space_names())
def test_artefacts_the_space_provides(name):
    sp = get_space(name)
    probe = _probe(name)
    if "parameter_groups" in sp.provides:
        groups = probe.parameter_groups()
        ids = [id(p) for group in groups.values() for p in group]
        assert "embedding" in groups and len(ids) == len(set(ids))
        assert set(ids) == {id(p) for p in probe.model.parameters()}  # a partition of the parameters
    if "hidden_states" in sp.provides:
        first, last = probe.hidden_states(1), probe.hidden_states(-1)
        assert first.shape[:-1] == last.shape[:-1] and first.shape[-1] > 1  # units may differ by layer
    if "activation_kernel" in sp.provides:
        k = probe.activation_kernel()
        b = probe.inputs.shape[getattr(probe.model, "batch_dim", 0)]
        assert k.shape == (b, b) and k.dtype == torch.float64 and torch.equal(k, k.t())


def test_a_setting_the_space_ignores_is_rejected():
    bert = get_space("nasbench-bert")
    with pytest.raises(TrainfreeError, match="offset"):
        bert.check(bert.tiny_settings().with_(offset=5))
    rnn = get_space("nasbench-nlp")
    rnn.check(rnn.tiny_settings().with_(offset=5))  # the RNN window does move with the offset
    assert not torch.equal(rnn.inputs(rnn.tiny_settings()), rnn.inputs(rnn.tiny_settings().with_(offset=5)))


def test_device_type_enters_only_device_dependent_fingerprints():
    bert, rnn = get_space("nasbench-bert"), get_space("nasbench-nlp")
    cpu = bert.tiny_settings()
    assert bert.fingerprint(cpu) == cpu.fingerprint()  # CPU fingerprints are those of earlier versions
    assert cpu.fingerprint("cuda") != cpu.fingerprint() and cpu.identity("cuda")["device_type"] == "cuda"
    assert bert.device_dependent and not rnn.device_dependent
    assert rnn._device_type(cpu) is None  # the RNN's numbers do not depend on the device: never added


def test_the_registry_is_cheap_and_lists_every_space():
    assert [e.name for e in SPACES] == space_names()
    for e in SPACES:
        assert e.description and e.sizes and e.provides
    assert json.dumps(space_names())  # plain names, usable as CLI choices

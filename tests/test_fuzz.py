"""Property-based fuzzing of every space's public parser (Hypothesis, derandomized so CI sees the same
~3,000 inputs every run): whatever the input, a parser accepts it (and the same input, and its JSON,
give the same id) or raises a TrainfreeError. benchmarks/fuzz_parsers.py runs 10,000+ per space."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainfree.spaces.nasbench_nlp.recipe import OPS
from tests.fuzz_cases import NAMES, SPACES, case, outcome

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
OUTCOMES = ("accepted", "error")

spaces = st.sampled_from(SPACES)
scalars = (st.none() | st.booleans() | st.integers() | st.integers(-3, 1100) | st.floats() | st.text(max_size=12)
           | st.sampled_from(NAMES))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=10) | st.sampled_from(NAMES), inner, max_size=5),
                           max_leaves=25)


@settings(FUZZ, max_examples=1500)
@given(space=spaces, rnd=st.randoms(use_true_random=False))
def test_mutated_architectures_are_accepted_or_refused_with_trainfrees_error(space, rnd):
    assert outcome(space, case(space, rnd)) in OUTCOMES


@settings(FUZZ, max_examples=600)
@given(space=spaces, value=json_values, as_text=st.booleans())
def test_random_json_values(space, value, as_text):
    assert outcome(space, json.dumps(value) if as_text else value) in OUTCOMES


@settings(FUZZ, max_examples=400)
@given(space=spaces, text=st.text(max_size=300) | st.binary(max_size=300))
def test_random_text_and_bytes(space, text):
    assert outcome(space, text) in OUTCOMES


node_names = st.sampled_from(["x", "a", "b", "node_0", "h_new_0", "h_new_1", "h_prev_0", "h_prev_1"]) | st.sampled_from(NAMES)
recipes = st.dictionaries(
    node_names,
    st.fixed_dictionaries({"op": st.sampled_from(list(OPS)) | json_values, "input": st.lists(node_names, max_size=4)}),
    min_size=1, max_size=6)


@settings(FUZZ, max_examples=600)
@given(recipe=recipes)
def test_recipe_shaped_values(recipe):
    assert outcome("nasbench-nlp", recipe) in OUTCOMES
    assert outcome("nasbench-nlp", json.dumps(recipe)) in OUTCOMES

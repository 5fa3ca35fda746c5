"""Search spaces, by name: a registry of cheap entries whose implementations load on first use.

An entry holds what the command line and metric applicability need (name, description, size
presets, provided artefacts) and where the implementation lives ("module:Class"); the module is
imported by :func:`get_space` only, so `trainfree --help` lists the spaces without importing torch.
Plug-ins add spaces with :func:`register_space` (see ``trainfree.registry.load_plugins``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from trainfree.errors import TrainfreeError
from trainfree.registry import Registry


@dataclass
class SpaceEntry:
    name: str
    target: object  # "module:Class", a SearchSpace subclass, or an instance
    description: str = ""
    sizes: tuple[str, ...] = ("paper",)
    provides: frozenset[str] = frozenset()
    #: the default input batch (sequences, tokens), for help texts; None where not given
    batch: tuple[int, int] | None = None
    _space: object = field(default=None, repr=False)

    def load(self):
        """The space instance (imported and built once)."""
        if self._space is None:
            target = self.target
            if isinstance(target, str):
                module, _, attr = target.partition(":")
                target = getattr(importlib.import_module(module), attr)
            space = target() if isinstance(target, type) else target
            if getattr(space, "name", None) != self.name:
                raise TrainfreeError(f"space {self.name!r}: its implementation {self.target!r} is named "
                                     f"{getattr(space, 'name', None)!r}")
            self._space = space
        return self._space


def _module_of(entry: SpaceEntry) -> str:
    target = type(entry._space) if entry._space is not None else entry.target
    return target.split(":")[0] if isinstance(target, str) else getattr(target, "__module__", "") or ""


SPACES: Registry[SpaceEntry] = Registry("search space", module_of=_module_of)


def register_space(target, name: str | None = None, *, description: str | None = None,
                   sizes: tuple[str, ...] | None = None, provides=None, batch: tuple[int, int] | None = None
                   ) -> SpaceEntry:
    """Register a space: a SearchSpace subclass or instance (its class attributes give the metadata),
    or a "module:Class" string with the metadata given here (so that the module loads lazily)."""
    if not isinstance(target, str):
        cls = target if isinstance(target, type) else type(target)
        name = name or cls.name
        description = cls.description if description is None else description
        sizes = tuple(cls.sizes) if sizes is None else sizes
        provides = cls.provides if provides is None else provides
    if not name:
        raise TrainfreeError(f"register_space({target!r}): give the space's name")
    return SPACES.add(name, SpaceEntry(name, target, description or "", tuple(sizes or ("paper",)),
                                       frozenset(provides or ()), batch))


def _builtin() -> None:
    both = {"parameters", "forward", "parameter_groups", "lm_loss", "synflow_output"}
    register_space("trainfree.spaces.nasbench_nlp.space:NASBenchNLPSpace", "nasbench-nlp",
                   description="NAS-Bench-NLP recurrent cells (recipes) in a 3-layer language model",
                   sizes=("paper", "small", "tiny"), batch=(50, 70),
                   provides=both | {"hidden_states", "activation_kernel", "recurrent_cell", "activation_codes",
                                    "cell_graph"})
    register_space("trainfree.spaces.bert.space:NASBenchBERTSpace", "nasbench-bert",
                   description="NAS-Bench-BERT encoders (per-layer SA / LT / DSC ops and FFN stacks)",
                   sizes=("paper", "as-specified", "tiny"), batch=(32, 128),
                   provides=both | {"encoder_ops", "activation_codes", "transformer_parts"})
    register_space("trainfree.spaces.decoder.space:DecoderSpace", "decoder",
                   description="LTS decoder-only language models (GPT-2 and Transformer-XL genotypes)",
                   sizes=("paper", "tiny"), batch=(16, 32),
                   provides=both | {"hidden_states", "activation_kernel", "decoder_blocks", "activation_codes",
                                    "transformer_parts", "shape"})
    # Hugging Face transformers spaces (trainfree[hf]); transformers is imported when one is loaded
    hf = both | {"hidden_states", "activation_kernel", "activation_codes", "transformer_parts", "shape"}
    register_space("trainfree.spaces.hf.space:LlamaSpace", "hf-llama",
                   description="Llama-style decoders (transformers LlamaForCausalLM): depth, width, heads, GQA kv "
                               "heads, MLP width, tied embeddings", sizes=("paper", "tiny"), provides=hf, batch=(16, 32))
    register_space("trainfree.spaces.hf.space:GPT2Space", "hf-gpt2",
                   description="GPT-2-style decoders (transformers GPT2LMHeadModel): depth, width, heads, MLP width",
                   sizes=("paper", "tiny"), provides=hf, batch=(16, 32))
    register_space("trainfree.spaces.gemstones.space:GemstonesSpace", "gemstones",
                   description="Gemstones decoders (Gemma-style, transformers GemmaForCausalLM): width x depth, heads "
                               "of 128, half as many key/value heads, GeGLU MLP of 4x width, 50,304 tokens",
                   sizes=("paper", "tiny"), provides=hf, batch=(16, 32))


_builtin()


def is_space_file(name) -> bool:
    """A space given as a path to a space file (.toml or .json, trainfree.spaces.hf) rather than a name."""
    return isinstance(name, str) and name.lower().endswith((".toml", ".json"))


def _entry(name: str) -> SpaceEntry:
    from trainfree.registry import ensure_plugins

    ensure_plugins()
    if is_space_file(name):  # registered under the name the file declares
        return SPACES.get(space_file(name).name)
    return SPACES.get(name)


def space_file(path=None, source: str | None = None):
    """The space a space file declares (trainfree.spaces.hf), registered once under its name; its text
    goes to worker processes, which call this with ``source`` to rebuild it without the file."""
    from trainfree.registry import add_worker_source
    from trainfree.spaces.hf.space import SIZES, HFSpace, spec_of_source, worker_source
    from trainfree.spaces.hf.spec import read_spec

    spec = read_spec(path) if source is None else spec_of_source(source)
    if spec.name in SPACES:
        space = SPACES.get(spec.name).load()
        if isinstance(space, HFSpace) and (space.spec.model, space.spec.text) == (spec.model, spec.text):
            return space
        raise TrainfreeError(f"{spec.where}: name: space {spec.name!r} is already registered; give the file another name")
    space = HFSpace(spec)
    register_space(space, space.name, description=space.description, sizes=SIZES, provides=space.provides)
    add_worker_source("trainfree.spaces:space_file_source", worker_source(spec))
    return space


def space_file_source(source: str):
    return space_file(source=source)


def get_space(name: str):
    """The space registered under ``name`` (UnknownName lists the choices), or the one a space file
    at the path ``name`` declares."""
    return _entry(name).load()


def space_entry(name: str) -> SpaceEntry:
    return _entry(name)


def space_names() -> list[str]:
    from trainfree.registry import ensure_plugins

    ensure_plugins()
    return SPACES.names()

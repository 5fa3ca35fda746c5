"""Every stored number stays the same through the merge of per-space metrics into shared ones: values
recorded with trainfree at commit 5645aaa (before the SearchSpace refactor), tiny settings, two sampled
architectures per space, scored on one shared probe as the runner does (old names, aliases included).

Decoder models since model version 2 start from LTS's GPT-2 initialisation; the decoder numbers here are
version 1's, so they are checked under ``init="flat"``, which must still reproduce them exactly."""
import functools
import math

import pytest

from trainfree.outcomes import score_one
from trainfree.spaces import get_space

REFERENCE = {
 "nasbench-nlp": [
  {
   "arch": {
    "node_0": {
     "op": "elementwise_sum",
     "input": [
      "h_prev_1",
      "h_prev_2"
     ]
    },
    "node_3": {
     "op": "elementwise_prod",
     "input": [
      "h_prev_0",
      "h_prev_1"
     ]
    },
    "node_6": {
     "op": "linear",
     "input": [
      "h_prev_1",
      "h_prev_2"
     ]
    },
    "node_7": {
     "op": "activation_sigm",
     "input": [
      "node_6"
     ]
    },
    "node_8": {
     "op": "elementwise_sum",
     "input": [
      "node_3",
      "node_6"
     ]
    },
    "node_10": {
     "op": "linear",
     "input": [
      "node_7",
      "h_prev_2"
     ]
    },
    "h_new_0": {
     "op": "activation_tanh",
     "input": [
      "node_10"
     ]
    },
    "h_new_1": {
     "op": "linear",
     "input": [
      "x",
      "h_new_0"
     ]
    },
    "h_new_2": {
     "op": "blend",
     "input": [
      "node_6",
      "node_0",
      "node_8"
     ]
    }
   },
   "values": {
    "params": 178576.0,
    "nonembedding_params": 8576.0,
    "hidden_cov": -7322.387861056526,
    "hidden_cov_l2": -8113.337965415921,
    "hidden_cov_l3": -7415.724788083825,
    "activation_distance": 41.30947418199013,
    "fisher": 0.009621791222752777,
    "jacob_cov": -1224.6881740464064
   }
  },
  {
   "arch": {
    "node_0": {
     "op": "linear",
     "input": [
      "x",
      "h_prev_0"
     ]
    },
    "node_1": {
     "op": "activation_sigm",
     "input": [
      "node_0"
     ]
    },
    "node_4": {
     "op": "linear",
     "input": [
      "x",
      "h_prev_0"
     ]
    },
    "node_5": {
     "op": "activation_sigm",
     "input": [
      "node_4"
     ]
    },
    "h_new_0": {
     "op": "linear",
     "input": [
      "x",
      "node_5",
      "node_1"
     ]
    }
   },
   "values": {
    "params": 179856.0,
    "nonembedding_params": 9856.0,
    "hidden_cov": -24387.596618549,
    "hidden_cov_l2": -49234.97097721924,
    "hidden_cov_l3": -19927.08799602094,
    "activation_distance": -math.inf,
    "fisher": 6.969672644125109e-06,
    "jacob_cov": -786501.7833003893
   }
  }
 ],
 "nasbench-bert": [
  {
   "arch": {
    "hidden_size": 256,
    "encoder_layers": [
     {
      "operation_type": "DSC",
      "operation_parameter": 9,
      "num_operation_heads": 4,
      "feed_forward_dimension": 1024,
      "num_feed_forward": 3
     },
     {
      "operation_type": "SA",
      "operation_parameter": "SDP",
      "num_operation_heads": 2,
      "feed_forward_dimension": 512,
      "num_feed_forward": 3
     },
     {
      "operation_type": "DSC",
      "operation_parameter": 5,
      "num_operation_heads": 2,
      "feed_forward_dimension": 1024,
      "num_feed_forward": 1
     },
     {
      "operation_type": "DSC",
      "operation_parameter": 5,
      "num_operation_heads": 2,
      "feed_forward_dimension": 1024,
      "num_feed_forward": 1
     }
    ]
   },
   "values": {
    "params": 540300.0,
    "nonembedding_params": 50892.0,
    "bert_activation_distance": 84290.0,
    "bert_activation_distance_n": 10536.25,
    "head_confidence": 1.3502967795357108,
    "fisher": 2.397993652891159e-10
   }
  },
  {
   "arch": {
    "hidden_size": 128,
    "encoder_layers": [
     {
      "operation_type": "DSC",
      "operation_parameter": 5,
      "num_operation_heads": 4,
      "feed_forward_dimension": 512,
      "num_feed_forward": 1
     },
     {
      "operation_type": "LT",
      "operation_parameter": "DCT",
      "num_operation_heads": 4,
      "feed_forward_dimension": 1024,
      "num_feed_forward": 3
     }
    ]
   },
   "values": {
    "params": 511962.0,
    "nonembedding_params": 22554.0,
    "bert_activation_distance": 36828.0,
    "bert_activation_distance_n": 9207.0,
    "head_confidence": 0.20080903824418783,
    "fisher": 8.832817326292461e-11
   }
  }
 ],
 "decoder": [
  {
   "arch": {
    "family": "TransXL",
    "n_layer": 7,
    "d_model": 256,
    "n_head": [
     8,
     4,
     8,
     8,
     2,
     2,
     2
    ],
    "d_inner": [
     951,
     1853,
     1913,
     522,
     1280,
     1772,
     715
    ],
    "d_embed": 512,
    "div_val": 1,
    "n_token": 267736,
    "cutoffs": [
     19997,
     39997,
     199997,
     267736
    ],
    "tie_projs": [
     False,
     True,
     True,
     True
    ],
    "tie_weight": True,
    "tgt_len": 192,
    "pre_lnorm": False
   },
   "values": {
    "params": 1349281.0,
    "decoder_params": 28191.0,
    "decoder_hidden_cov": -70330.54342350406,
    "decoder_hidden_cov_last": -50795.67694663586,
    "decoder_activation_distance": 35.1292265560469,
    "fisher": 1.0429781788525667e-10
   }
  },
  {
   "arch": {
    "family": "GPT2",
    "n_layer": 14,
    "d_model": 128,
    "n_head": [
     4,
     2,
     8,
     2,
     8,
     4,
     4,
     4,
     4,
     4,
     4,
     8,
     8,
     8
    ],
    "d_inner": [
     1588,
     1468,
     1036,
     2032,
     1228,
     842,
     1810,
     758,
     1829,
     1453,
     688,
     579,
     1195,
     566
    ],
    "d_embed": 128,
    "div_val": 2,
    "n_token": 50264,
    "cutoffs": [
     19997,
     39997,
     50264
    ],
    "tie_projs": [
     False,
     True,
     True
    ],
    "tie_weight": True,
    "tgt_len": 192,
    "pre_lnorm": False
   },
   "values": {
    "params": 304357.0,
    "decoder_params": 22645.0,
    "decoder_hidden_cov": -22.624072388521814,
    "decoder_hidden_cov_last": -73.08857703106405,
    "decoder_activation_distance": 28.14601567770861,
    "fisher": 1.6363300712022108e-08
   }
  }
 ]
}


@pytest.mark.parametrize("space_name,case", [(s, i) for s in REFERENCE for i in range(len(REFERENCE[s]))])
def test_values_are_those_before_the_merge(space_name, case, monkeypatch):
    if space_name == "decoder":
        from trainfree.spaces.decoder import space as decoder_space
        from trainfree.spaces.decoder.model import build_decoder

        monkeypatch.setattr(decoder_space, "build_decoder", functools.partial(build_decoder, init="flat"))
    space = get_space(space_name)
    ref = REFERENCE[space_name][case]
    arch = space.from_json(ref["arch"])
    got = {o.metric: o.value for o in score_one(space, arch, list(ref["values"]), space.tiny_settings())}
    for name, value in ref["values"].items():
        if math.isinf(value) or value == int(value):  # -inf and whole counts: exactly
            assert got[name] == value, name
        else:  # exact here; a relative 1e-12 leaves room for another BLAS's summation order
            assert got[name] == pytest.approx(value, rel=1e-12, abs=0), name

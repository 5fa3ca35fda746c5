"""The zero-cost suite: every metric on every architecture of every shipped benchmark, computed once
through a store (:mod:`trainfree.suite.build`), shipped as one compact file that the scoring loop reads
instead of recomputing (:mod:`trainfree.store.shipped`), a leaderboard from it in seconds
(:mod:`trainfree.suite.leaderboard`) and an export in NAS-Bench-Suite-Zero's schema
(:mod:`trainfree.suite.naslib`). Which metrics run where is :mod:`trainfree.suite.plan`."""

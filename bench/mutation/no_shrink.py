"""pytest plugin of the constants' runs (`-p bench.mutation.no_shrink --hypothesis-profile=mutation`): a run asks
only whether a test fails, so a failing property test is not shrunk (Hypothesis shrinks a failing example for up
to five minutes, longer under load)."""

from __future__ import annotations

from hypothesis import Phase, settings

settings.register_profile("mutation", phases=(Phase.explicit, Phase.reuse, Phase.generate))

"""Synthetic organisations for tests, benchmarks and demos (deterministic from a seed).

>>> org = generate_organisation(n_respondents=2000, n_units=80, seed=1)
>>> inp = to_scoring_input(org)                 # the engine's ScoringInput
>>> batches = to_api_batches(org, batch_size=500)  # POST /v1/rounds/{id}/responses bodies
>>> units = to_units_payload(org)              # PUT /v1/units body
"""

from coherence_core.synthetic.export import (
    to_api_batches,
    to_scoring_frames,
    to_scoring_input,
    to_units_payload,
)
from coherence_core.synthetic.generator import (
    NO_TARGET,
    NULL_VALUE,
    SyntheticOrg,
    SyntheticUnit,
    generate_organisation,
)

__all__ = [
    "NO_TARGET",
    "NULL_VALUE",
    "SyntheticOrg",
    "SyntheticUnit",
    "generate_organisation",
    "to_api_batches",
    "to_scoring_frames",
    "to_scoring_input",
    "to_units_payload",
]

"""The worker's queries, by concern, over the job's asyncpg connection: a round's scoring state
and runs (`rounds`), its inputs (`inputs`), its published results (`results`), the publication
ledger (`ledger`) and housekeeping (`maintenance`)."""

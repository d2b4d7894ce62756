"""Workflow plumbing, apart from the model code: the experiment grid and its paths (`grid`),
the tidy tables (`tables`), what a job needs to start (`jobs`, `smk_support`), the checks at
planning time (`checks`), GPU assignment (`gpus`) and out-of-memory retries (`oom`)."""

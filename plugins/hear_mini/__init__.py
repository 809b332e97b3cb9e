"""First-party offline task suite built from material installable without the internet."""

"""Peer scripts of ``jaxmlp bench --e2e``: standalone programs, each the job as a user of that
library would write it (no jaxmlp imports). The harness runs them by path, in fresh processes."""

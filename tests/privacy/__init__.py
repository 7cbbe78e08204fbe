"""The privacy corpus of issue 11: a few hundred secrets and subscriber data planted in
realistic platform files on a simulated host, each carrying one unique marker, and the
tools that run `akdiag collect` over it and grep the extracted bundle for every marker.

Run the leak summary with `python3 -m tests.privacy.report` from the repository root."""
